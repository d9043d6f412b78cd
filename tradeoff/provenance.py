"""Where a result came from: git commit, device, library versions."""
from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import subprocess

import jax


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
  """HEAD of the tradeoff checkout, with '-dirty' if tracked files changed, or 'unknown'.

  Changes under figures/ (generated result files and figures, which a running
  experiment rewrites as it goes) do not make the checkout dirty: the code that
  ran is still HEAD's.

  A copy of the code without its .git folder (e.g. rsynced to a cluster or an
  accelerator host) can name its commit in $TRADEOFF_GIT_COMMIT; it is recorded
  with a '(from TRADEOFF_GIT_COMMIT)' suffix so it is never mistaken for a
  checked value.
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    run = lambda *a: subprocess.run(['git', '-C', root, *a], capture_output=True, text=True,
                                    check=True, timeout=10).stdout.strip()
    commit = run('rev-parse', 'HEAD')
    dirty = bool(run('status', '--porcelain', '--untracked-files=no', '--', '.',
                     ':(exclude)figures'))
    return commit + ('-dirty' if dirty else '')
  except (OSError, subprocess.SubprocessError):
    named = os.environ.get('TRADEOFF_GIT_COMMIT', '').strip()
    return f'{named} (from TRADEOFF_GIT_COMMIT)' if named else 'unknown'


# /proc/cpuinfo flags that decide how fast XLA:CPU's kernels can be.
_CPU_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_tile', 'amx_bf16')


def _cpuinfo() -> dict[str, str]:
  fields = {}
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if not line.strip():
          break  # the first processor is enough
        key, _, value = line.partition(':')
        fields[key.strip()] = value.strip()
  except OSError:
    pass
  return fields


@functools.lru_cache(maxsize=None)
def host() -> dict:
  """The machine precisely: hosts with the same CPU label can differ 2.5× in speed.

  Returns:
    {'cpu': model name, 'cores': usable cores, 'cpu_flags': the AVX-512 / AMX /
    BF16 / AVX2 flags present, 'hostname': ..., 'machine': ...}.
  """
  info = _cpuinfo()
  flags = set(info.get('flags', '').split())
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:
    cores = os.cpu_count()
  return {'cpu': info.get('model name') or platform.processor() or platform.machine(),
          'cores': cores, 'cpu_flags': [f for f in _CPU_FLAGS if f in flags],
          'cpu_family_model_stepping': '/'.join(info.get(k, '?') for k in (
              'cpu family', 'model', 'stepping')),
          'hostname': platform.node(), 'machine': platform.machine()}


def device_description() -> str:
  """E.g. '2x cpu (AMD EPYC, 2 cores, avx2 fma)' or '8x TPU v4'."""
  devices = jax.local_devices()
  kind = devices[0].device_kind
  if devices[0].platform == 'cpu':
    h = host()
    kind = f"cpu ({h['cpu']}, {os.cpu_count()} cores, {' '.join(h['cpu_flags']) or 'no avx2'})"
  return f'{len(devices)}x {kind}'


def versions() -> dict[str, str]:
  import flax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  out = {'python': platform.python_version(), 'jax': jax.__version__,
         'flax': flax.__version__, 'optax': optax.__version__}
  for dist in ('jaxlib', 'numpy', 'orbax-checkpoint', 'tensorflow-datasets'):
    try:
      out[dist] = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      pass
  return out
