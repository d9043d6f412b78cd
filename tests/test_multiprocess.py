"""Multi-process training with real processes: two JAX processes on localhost
(CPU backend, gloo collectives, coordinator on 127.0.0.1), one device each."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import conftest
from tradeoff import workdir as workdir_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = '''
from tradeoff import configlib

def get_config(arg=None):
  c = configlib.base_config(dataset='synthetic', norm='linf', eps=0.1, model='mlp')
  c.data.synthetic.update({'d': 20, 'num_train': 256, 'num_test': 64})
  c.model.hidden = (16,)
  c.data.batch_size = 16
  c.data.eval_batch_size = 32
  c.num_train_steps = int(arg or 12)
  c.log_every = 10
  c.checkpoint_every = 100
  c.progress_bar = False
  c.tensorboard = False
  return c
'''


# Ten classes, so AutoAttack fast (APGD-CE, then APGD-T) can evaluate it.
MNIST_CONFIG = '''
from tradeoff import configlib

def get_config(arg=None):
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.1, model='mlp')
  c.data.data_dir = {data_dir!r}
  c.data.train_size = 256
  c.model.hidden = (16,)
  c.data.batch_size = 16
  c.data.eval_batch_size = 32
  c.num_eval_examples = 64
  c.num_train_steps = 12
  c.log_every = 10
  c.progress_bar = False
  c.tensorboard = False
  return c
'''


@pytest.fixture(scope='module')
def config_file(tmp_path_factory):
  path = tmp_path_factory.mktemp('mp') / 'tiny_mlp.py'
  path.write_text(CONFIG)
  return str(path)


@pytest.fixture
def mnist_config_file(tmp_path, mnist_dir):
  path = tmp_path / 'mnist_mlp.py'
  path.write_text(MNIST_CONFIG.format(data_dir=mnist_dir))
  return str(path)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(config, workdir, num_processes, devices_per_process, heartbeat_s=10, overrides=()):
  """The same command on every process, as a cluster would start them."""
  env = {**os.environ, 'PYTHONUNBUFFERED': '1',
         'XLA_FLAGS': conftest.xla_flags(devices_per_process)}
  port = _free_port()
  procs = []
  for i in range(num_processes):
    cmd = [sys.executable, '-m', 'tradeoff.main', f'--config={config}', f'--workdir={workdir}',
           *overrides]
    if num_processes > 1:
      cmd += [f'--coordinator_address=127.0.0.1:{port}', f'--num_processes={num_processes}',
              f'--process_id={i}', f'--heartbeat_timeout_s={heartbeat_s}']
    procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  return procs


def _finish(procs, timeout=240):
  outs = [p.communicate(timeout=timeout) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  return outs


def _params(workdir):
  return workdir_lib.raw_state(workdir)['params']


def _untimed(value):
  if isinstance(value, list):
    return [{k: v for k, v in d.items() if k != 'wall_time_s'} for d in value]
  return value


@pytest.mark.slow
def test_two_processes_train_exactly_as_one_process_with_the_same_global_batch(
    mnist_config_file, tmp_path):
  one, two = str(tmp_path / 'one'), str(tmp_path / 'two')
  # Evaluated by AutoAttack fast: per-point robustness gathered across the processes.
  aa = ('--config.eval_attack.name=autoattack_fast',
        '--config.eval_attack.autoattack.apgd_steps=20', '--config.eval_attack.autoattack.targets=3')
  _finish(_launch(mnist_config_file, one, 1, 2, overrides=aa) +
          _launch(mnist_config_file, two, 2, 1, overrides=aa))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               _params(one), _params(two))
  r1, r2 = (json.load(open(os.path.join(w, 'results.json'))) for w in (one, two))
  assert r2['processes']['process_count'] == 2 and r2['processes']['device_count'] == 2
  assert r1['processes']['process_count'] == 1 and r1['processes']['device_count'] == 2
  for key in ('clean_accuracy', 'robust_accuracy', 'num_examples', 'robust_accuracy_by_stage'):
    assert _untimed(r1[key]) == _untimed(r2[key]), key
  stages = r2['robust_accuracy_by_stage']
  assert [s['attack'] for s in stages] == ['apgd_ce', 'apgd_t3']
  assert stages[1]['attacked_points'] > 0     # the second stage attacked gathered survivors
  # Process 0 alone wrote the run's files: one line per logged step.
  steps = [json.loads(line)['step'] for line in open(os.path.join(two, 'metrics.jsonl'))]
  assert steps.count(10) == 1


@pytest.mark.slow
def test_a_killed_process_stops_the_other_and_both_resume_to_the_same_parameters(
    config_file, tmp_path):
  config = f'{config_file}:300'
  clean = str(tmp_path / 'clean')
  _finish(_launch(config, clean, 1, 2))
  wd = str(tmp_path / 'killed')
  procs = _launch(config, wd, 2, 1)
  deadline = time.time() + 120
  while not os.path.isdir(os.path.join(wd, 'checkpoints', '100')) and time.time() < deadline:
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGKILL)
  t_kill = time.time()
  _, err = procs[0].communicate(timeout=120)
  assert time.time() - t_kill < 60            # no hang: it stops on its own
  assert procs[0].returncode == 3, err[-3000:]
  assert 'a collective with the other processes failed' in err
  assert 'Restart every process with the same command' in err
  procs[1].communicate()
  saved = workdir_lib.checkpoint_manager(wd).latest_step()
  assert 100 <= saved < 300
  _finish(_launch(config, wd, 2, 1))
  resumed = json.load(open(os.path.join(wd, 'results.json')))
  assert resumed['resumed_from_step'] == saved
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               _params(clean), _params(wd))


@pytest.mark.slow
def test_sigterm_to_one_process_checkpoints_every_process_at_the_same_step(config_file,
                                                                         tmp_path):
  wd = str(tmp_path / 'preempted')
  procs = _launch(f'{config_file}:300', wd, 2, 1)
  metrics = os.path.join(wd, 'metrics.jsonl')
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.exists(metrics) and
                                         os.path.getsize(metrics) > 0):
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)        # the scheduler warns one host only
  outs = [p.communicate(timeout=120) for p in procs]
  assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, outs[0][1][-2000:]
  assert "stopped by another process's signal" in outs[0][1]
  assert 'stopped by SIGTERM' in outs[1][1]
  saved = workdir_lib.checkpoint_manager(wd).latest_step()
  assert 10 <= saved < 300 and f'at step {saved}/300' in outs[0][1]
  assert f'at step {saved}/300' in outs[1][1]
