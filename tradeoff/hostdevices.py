"""Splitting a CPU host into several JAX devices, one per core.

On a CPU, XLA runs one device's program with intra-op threads, and its
convolution kernels scale poorly from one thread to two at the Madry CNN's
sizes. `jax.pmap` over one CPU device per core instead runs the data-parallel
step on every core at once, each on its share of the batch — the same
program as on a multi-GPU box (gradients and metrics are `lax.pmean`-ed). For
models without batch statistics the update equals the one-device update on the
same global batch; the attack's random starts differ, because they are drawn
with `fold_in(step, device)`. Runs record the device count in `device`.
"""
from __future__ import annotations

import jax


def use_cpu_devices(n: int) -> None:
  """Makes the CPU platform expose `n` devices; call before any JAX computation.

  Args:
    n: number of CPU devices, >= 1; 0 keeps JAX's default (one device).

  Raises:
    ValueError: n is negative.
    RuntimeError: JAX's backends are already initialised (the split can no
      longer take effect).
  """
  if n < 0:
    raise ValueError(f'cpu_devices must be >= 0 (0 = JAX default), got {n}')
  if n == 0:
    return
  jax.config.update('jax_num_cpu_devices', n)
