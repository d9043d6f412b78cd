"""Test setup: 2 fake CPU devices, and tfds data prepared offline when possible.

XLA_FLAGS must be set before JAX initialises its backend, so this runs at
import time. Data: $TFDS_DATA_DIR if it holds the datasets; otherwise, when
the offline kit ../shared/data/prepare_tfds.py exists beside the checkout,
the datasets are prepared once into .data/ (ignored by git); otherwise tests
that need real data are skipped, except under CI=true, where they fail. Their
decoded arrays are cached in .data/array_cache for every test process.
"""
import fcntl
import os
import signal
import subprocess
import sys

# XLA:CPU aborts the process when the devices of a collective arrive more than
# 20 + 40 s apart; on a loaded 2-core machine (two test workers, subprocesses)
# a starved device thread can be that late, so the limit is raised.
_XLA_FLAGS_OUTSIDE = os.environ.get('XLA_FLAGS', '')


def xla_flags(device_count: int) -> str:
  """The test processes' XLA_FLAGS with `device_count` fake CPU devices: what
  this process runs with (2), and what its subprocesses get when they stand for
  a host with another number of devices."""
  return (f'{_XLA_FLAGS_OUTSIDE} --xla_force_host_platform_device_count={device_count}'
          ' --xla_cpu_collective_call_terminate_timeout_seconds=600').strip()


os.environ['XLA_FLAGS'] = xla_flags(2)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Decoded tfds arrays (data.ARRAY_CACHE_ENV) and XLA executables (JAX's persistent
# compilation cache) are shared by every test process, subprocesses included: the
# suite compiles the same smoke-sized programs many times.
_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '.data')
os.environ.setdefault('TRADEOFF_ARRAY_CACHE', os.path.join(_CACHE, 'array_cache'))
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', os.path.join(_CACHE, 'jax_cache'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'prepare_tfds.py')
LOCAL_DATA = os.path.join(ROOT, '.data', 'tfds')


DATASETS = ('mnist', 'fashion_mnist', 'cifar10')   # in the order the suite first needs them


def _prepared(data_dir, name):
  """Whether `name` is wholly prepared in data_dir: tfds writes a version's
  dataset_info.json after its data files, so a preparation under way in another
  test process does not count."""
  if not data_dir:
    return False
  root = os.path.join(data_dir, name)
  return os.path.isdir(root) and any(
      'incomplete' not in v and os.path.exists(os.path.join(root, v, 'dataset_info.json'))
      for v in os.listdir(root))


def _local(name: str) -> str:
  return LOCAL_DATA + ('_cifar10_jpeg75' if name == 'cifar10' else '')


def prepare_locally(name: str) -> None:
  """Prepares `name` into .data/ from the offline kit unless it is there, once:
  test processes (and the session's background preparation) take turns under a
  file lock, so no dataset is prepared twice."""
  os.makedirs(_CACHE, exist_ok=True)
  with open(os.path.join(_CACHE, f'prepare_{name}.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file is closed
    if not _prepared(_local(name), name):
      subprocess.run([sys.executable, KIT, LOCAL_DATA, '--datasets', name], check=True,
                     stdout=subprocess.DEVNULL)


def _data_dir(name: str) -> str:
  """A tfds data dir holding `name`, preparing it from the offline kit if needed."""
  local = _local(name)
  if _prepared(os.environ.get('TFDS_DATA_DIR', ''), name):
    return os.environ['TFDS_DATA_DIR']
  if not os.path.exists(KIT) and _prepared(local, name):
    return local
  if os.path.exists(KIT):
    prepare_locally(name)
    if _prepared(local, name):
      return local
  msg = f'tfds dataset {name!r} not found and no offline kit at {KIT}'
  if os.environ.get('CI') == 'true':
    pytest.fail(msg)
  pytest.skip(msg)


_BACKGROUND = []


def pytest_configure(config):
  """With several test workers, the datasets the kit can prepare and nobody has
  yet are prepared by one background process from the start, one after the
  other under the same locks, while the workers run the tests that need no
  data; a test that needs one waits for it (a worker that prepared it itself
  would leave the other waiting on the lock, with a core idle)."""
  workers = getattr(config.option, 'numprocesses', None)
  if hasattr(config, 'workerinput') or not workers or not os.path.exists(KIT):
    return
  missing = [n for n in DATASETS
             if not _prepared(os.environ.get('TFDS_DATA_DIR', ''), n)
             and not _prepared(_local(n), n)]
  if missing:
    os.makedirs(_CACHE, exist_ok=True)
    # Its output goes to a log; should it fail, the test that needs the dataset
    # prepares it again itself and fails there with the kit's error.
    with open(os.path.join(_CACHE, 'prepare.log'), 'w') as log:
      _BACKGROUND.append(subprocess.Popen(
          [sys.executable, '-c', 'import sys, conftest; [conftest.prepare_locally(n) for n in '
           'sys.argv[1:]]', *missing], cwd=os.path.dirname(os.path.abspath(__file__)),
          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))


def pytest_unconfigure(config):
  del config
  for proc in _BACKGROUND:
    if proc.poll() is None:   # a run of a few tests ended before it: stop preparing
      os.killpg(proc.pid, signal.SIGTERM)   # the kit's process too (tfds renames a
      proc.wait()                           # dataset into place only when it is whole)


@pytest.fixture(scope='session')
def mnist_dir():
  return _data_dir('mnist')


@pytest.fixture(scope='session')
def fashion_mnist_dir():
  return _data_dir('fashion_mnist')


@pytest.fixture(scope='session')
def cifar10_dir():
  return _data_dir('cifar10')


@pytest.fixture(scope='session')
def repo_root():
  return ROOT
