"""Multi-process runs: one JAX process per host (or per GPU), all training one model.

Every process runs the same program. `initialize` starts JAX's distributed
runtime when the run is multi-process:

  * explicitly, from --coordinator_address / --num_processes / --process_id
    (or $TRADEOFF_COORDINATOR_ADDRESS, $TRADEOFF_NUM_PROCESSES, $TRADEOFF_PROCESS_ID);
  * automatically where JAX detects the cluster itself: Slurm with more than
    one task, Open MPI with more than one rank, a multi-host Cloud TPU slice;
  * otherwise not at all: one process, as on a laptop, one GPU box or a Colab TPU.

Then each process feeds its local devices its own slice of every global batch
(data.TrainStream / streaming.StreamingTrainStream, `process_index` of
`process_count`), and the pmapped step's `pmean` / `psum` run over the devices
of all processes, so N processes compute the step of the global batch exactly
as one process with all the devices would. Files: process 0 writes config.json,
logs, metrics, TensorBoard and results.json; every process calls orbax's save,
which writes the (replicated) state once and waits for all. On CPU the
collectives go through gloo.
"""
from __future__ import annotations

import logging
import os
import time

import jax

from tradeoff import errors

ENV = {'coordinator_address': 'TRADEOFF_COORDINATOR_ADDRESS',
       'num_processes': 'TRADEOFF_NUM_PROCESSES', 'process_id': 'TRADEOFF_PROCESS_ID'}

_STATE = {'initialized': False, 'init_seconds': 0.0, 'how': 'single process'}


def detected_cluster() -> str | None:
  """The multi-process cluster JAX can configure itself from, if this is one."""
  env = os.environ
  if int(env.get('SLURM_STEP_NUM_TASKS', env.get('SLURM_NTASKS', '1')) or 1) > 1 and (
      'SLURM_PROCID' in env):
    return 'slurm'
  if int(env.get('OMPI_COMM_WORLD_SIZE', '1') or 1) > 1:
    return 'open mpi'
  if ',' in env.get('TPU_WORKER_HOSTNAMES', '') or env.get('MEGASCALE_COORDINATOR_ADDRESS'):
    return 'cloud tpu'
  return None


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, heartbeat_timeout_s: int = 100) -> str:
  """Starts the distributed runtime if this run is multi-process; returns how.

  Raises:
    errors.UserError: an incomplete or inconsistent explicit setting.
  """
  if _STATE['initialized']:
    return _STATE['how']
  explicit = {'coordinator_address': coordinator_address, 'num_processes': num_processes,
              'process_id': process_id}
  for key, var in ENV.items():
    if explicit[key] in (None, '') and os.environ.get(var):
      explicit[key] = os.environ[var]
  given = {k: v for k, v in explicit.items() if v not in (None, '')}
  if given and len(given) != 3:
    missing = sorted(set(explicit) - set(given))
    raise errors.UserError(
        f'Multi-process settings {given} are incomplete: also give {missing} (flags '
        f'--coordinator_address, --num_processes, --process_id, or $TRADEOFF_*).')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  t0 = time.time()
  if given:
    n, pid = int(given['num_processes']), int(given['process_id'])
    if n < 1 or not 0 <= pid < n:
      raise errors.UserError(f'--process_id={pid} must be in [0, {n}) for --num_processes={n}.')
    if n == 1:
      return _STATE['how']
    jax.distributed.initialize(str(given['coordinator_address']), n, pid,
                               heartbeat_timeout_seconds=int(heartbeat_timeout_s))
    how = f'explicit: {n} processes, coordinator {given["coordinator_address"]}'
  else:
    cluster = detected_cluster()
    if cluster is None:
      return _STATE['how']
    jax.distributed.initialize(heartbeat_timeout_seconds=int(heartbeat_timeout_s))
    how = f'detected {cluster}: {jax.process_count()} processes'
  _STATE.update(initialized=True, init_seconds=time.time() - t0, how=how)
  logging.info('Distributed runtime up in %.1f s (%s); process %d of %d, %d local of %d '
               'devices', _STATE['init_seconds'], how, jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
  return how


def is_primary() -> bool:
  """Whether this process writes the run's files (process 0)."""
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier called `name` (no-op alone)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """Whether `flag` is true on any process (a collective: every process must call
  it at the same point). Used so that a signal reaching one process stops all of
  them at the same step."""
  if jax.process_count() == 1:
    return bool(flag)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def describe() -> dict:
  """What results.json records about the processes of the run."""
  return {'process_count': jax.process_count(), 'device_count': jax.device_count(),
          'local_device_count': jax.local_device_count(), 'how': _STATE['how'],
          'init_seconds': _STATE['init_seconds']}
