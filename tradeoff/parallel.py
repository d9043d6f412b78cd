"""Data parallelism over the local devices: one axis name, replicate, unreplicate, shard.

Every step function is written for one device's shard and averages over
`AXIS` with `lax.pmean` / `lax.psum`; `jax.pmap(axis_name=AXIS)` runs it on all
local devices (one device is a pmap of one). Nothing else in the step bodies
is pmap-specific, so they port to `jax.jit` of `jax.shard_map` over a
one-axis `Mesh` named AXIS.
"""
from __future__ import annotations

import collections
from typing import Iterable, Iterator

import jax
import numpy as np

AXIS = 'batch'


def local_device_count() -> int:
  return jax.local_device_count()


def _sharding(num_devices: int) -> jax.sharding.NamedSharding:
  """Leading axis split over the first num_devices local devices, as pmap places it."""
  devices = jax.local_devices()[:num_devices]
  return jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS,)),
                                    jax.sharding.PartitionSpec(AXIS))


def replicate(tree, num_devices: int):
  """Copies with a leading device axis, placed as pmap places its own outputs.

  Going through the host uncommits arrays placed on one device (e.g. by a
  checkpoint restore), which pmap would reject; matching pmap's output
  sharding means the first step does not compile a second time.
  """
  sharding = _sharding(num_devices)
  return jax.tree.map(
      lambda a: jax.device_put(np.broadcast_to(np.asarray(a), (num_devices,) + np.shape(a)),
                               sharding),
      jax.device_get(tree))


def unreplicate(tree):
  """The first device's copy of a replicated tree."""
  return jax.tree.map(lambda a: a[0], tree)


def shard(batch: dict[str, np.ndarray], num_devices: int) -> dict[str, np.ndarray]:
  """[B, ...] -> [devices, B / devices, ...] for pmap."""
  def split(a):
    if a.shape[0] % num_devices:
      raise ValueError(f'Batch size {a.shape[0]} is not divisible by the '
                       f'{num_devices} local devices.')
    return a.reshape((num_devices, a.shape[0] // num_devices) + a.shape[1:])
  return jax.tree.map(split, batch)


def prefetch_to_device(batches: Iterable[dict], num_devices: int, size: int = 2
                       ) -> Iterator[dict]:
  """Shards each host batch and starts its copy to the devices `size` batches ahead,
  so the copy (and the host work that makes the next batch) overlaps the step."""
  sharding = _sharding(num_devices)
  queue = collections.deque()
  for batch in batches:
    queue.append(jax.tree.map(lambda a: jax.device_put(a, sharding), shard(batch, num_devices)))
    if len(queue) >= size:
      yield queue.popleft()
  while queue:
    yield queue.popleft()
