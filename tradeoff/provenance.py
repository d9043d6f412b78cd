"""Where a result came from: git commit, device, library versions."""
from __future__ import annotations

import functools
import os
import platform
import subprocess

import jax


@functools.lru_cache(maxsize=None)
def git_commit() -> str:
  """HEAD of the tradeoff checkout, with '-dirty' if tracked files changed, or 'unknown'.

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
    dirty = bool(run('status', '--porcelain', '--untracked-files=no'))
    return commit + ('-dirty' if dirty else '')
  except (OSError, subprocess.SubprocessError):
    named = os.environ.get('TRADEOFF_GIT_COMMIT', '').strip()
    return f'{named} (from TRADEOFF_GIT_COMMIT)' if named else 'unknown'


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def device_description() -> str:
  """E.g. '2x cpu (Intel(R) Xeon(R) ..., 2 cores)' or '8x TPU v4'."""
  devices = jax.local_devices()
  kind = devices[0].device_kind
  if devices[0].platform == 'cpu':
    kind = f'cpu ({_cpu_name()}, {os.cpu_count()} cores)'
  return f'{len(devices)}x {kind}'


def versions() -> dict[str, str]:
  import flax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  return {'python': platform.python_version(), 'jax': jax.__version__,
          'flax': flax.__version__, 'optax': optax.__version__}
