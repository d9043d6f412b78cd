"""Whole runs of the real configs' smoke variants, in-process and through the CLI."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tradeoff import configlib
from tradeoff import evaluation
from tradeoff import train
from tradeoff import workdir as workdir_lib
from tradeoff import writers

RESULT_KEYS = {'config', 'commit', 'device', 'wall_time_s', 'clean_accuracy',
               'robust_accuracy', 'eval_attack', 'train_attack', 'data', 'num_examples'}


def load_config(repo_root, name, overrides=()):
  config = configlib.load(os.path.join(repo_root, 'configs', name))
  for key, value in overrides:
    node = config
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


@pytest.mark.parametrize('name,fixture', [
    ('mnist_linf.py:smoke', 'mnist_dir'), ('mnist_l2.py:smoke', 'mnist_dir'),
    ('fashion_mnist_linf.py:smoke', 'fashion_mnist_dir'),
    ('cifar10_linf.py:smoke', 'cifar10_dir'), ('cifar10_l2.py:smoke', 'cifar10_dir')])
def test_smoke_configs_train_and_write_results(name, fixture, request, repo_root, tmp_path):
  data_dir = request.getfixturevalue(fixture)
  config = load_config(repo_root, name, [('data.data_dir', data_dir)])
  results = train.train_and_evaluate(config, str(tmp_path))
  assert RESULT_KEYS <= set(results)
  on_disk = json.load(open(tmp_path / 'results.json'))
  assert on_disk['clean_accuracy'] == results['clean_accuracy']
  assert 0.0 <= results['robust_accuracy'] <= results['clean_accuracy'] <= 1.0
  assert results['num_examples'] == config.num_eval_examples
  atk = results['eval_attack']
  assert (atk['norm'], atk['eps'], atk['num_steps'], atk['restarts']) == (
      config.norm, config.eps, config.eval_attack.num_steps, config.eval_attack.restarts)
  assert atk['step_size'] > 0
  assert results['data']['approximate_copy'] == name.startswith('cifar10')
  assert json.load(open(tmp_path / 'config.json'))['eps'] == config.eps
  records = writers.read_metrics(str(tmp_path))
  train_steps = [r['step'] for r in records if 'train/loss' in r]
  assert train_steps == [2, 4]
  assert all(np.isfinite(r['train/loss']) for r in records if 'train/loss' in r)
  assert os.listdir(tmp_path / 'tensorboard')
  assert workdir_lib.checkpoint_manager(str(tmp_path)).latest_step() == 4


def test_rerun_of_a_finished_run_resumes_and_evaluates_identically(mnist_dir, repo_root,
                                                                    tmp_path):
  config = load_config(repo_root, 'mnist_linf.py:smoke', [('data.data_dir', mnist_dir)])
  first = train.train_and_evaluate(config, str(tmp_path))
  second = train.train_and_evaluate(config, str(tmp_path))
  assert second['resumed_from_step'] == 4
  assert second['robust_accuracy'] == first['robust_accuracy']
  again = evaluation.evaluate_checkpoint(config, str(tmp_path))
  assert (again['clean_accuracy'], again['robust_accuracy']) == (
      first['clean_accuracy'], first['robust_accuracy'])


def test_results_record_the_commit_the_run_started_from(mnist_dir, repo_root, tmp_path,
                                                        monkeypatch):
  head = {'commit': 'at-start'}
  monkeypatch.setattr(train.provenance, 'git_commit', lambda: head['commit'])
  make_step = train.make_p_train_step
  def make_step_that_moves_head(*args, **kwargs):
    step = make_step(*args, **kwargs)
    def moving_step(*a, **k):
      head['commit'] = 'moved-during-training'
      return step(*a, **k)
    return moving_step
  monkeypatch.setattr(train, 'make_p_train_step', make_step_that_moves_head)
  config = load_config(repo_root, 'mnist_linf.py:smoke', [('data.data_dir', mnist_dir)])
  assert train.train_and_evaluate(config, str(tmp_path))['commit'] == 'at-start'


def test_changed_config_in_same_workdir_is_rejected(mnist_dir, repo_root, tmp_path):
  config = load_config(repo_root, 'mnist_linf.py:smoke', [('data.data_dir', mnist_dir)])
  train.train_and_evaluate(config, str(tmp_path))
  config.eps = 0.1
  with pytest.raises(ValueError, match=r'eps: 0.3 -> 0.1'):
    train.train_and_evaluate(config, str(tmp_path))


def test_non_finite_loss_stops_the_run_naming_the_step(mnist_dir, repo_root, tmp_path):
  config = load_config(repo_root, 'mnist_linf.py:smoke', [
      ('data.data_dir', mnist_dir), ('optim.name', 'sgd'), ('optim.learning_rate', 1e38),
      ('optim.schedule', 'constant'), ('checkpoint_every', 3)])
  with pytest.raises(FloatingPointError, match=r'Non-finite training loss \S+ at step 1 '):
    train.train_and_evaluate(config, str(tmp_path))
  assert workdir_lib.checkpoint_manager(str(tmp_path)).latest_step() is None  # nothing bad was saved


def _cli(repo_root, *args, **kwargs):
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  return subprocess.Popen([sys.executable, '-m', *args], cwd=repo_root, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _final_params(workdir):
  mngr = workdir_lib.checkpoint_manager(workdir)
  step = mngr.latest_step()
  restored = mngr.restore(step, args=workdir_lib.ocp.args.Composite(
      state=workdir_lib.ocp.args.StandardRestore()))
  return step, restored['state']['params']


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters(mnist_dir, repo_root, tmp_path):
  """kill -9 mid-run, rerun the same command: same final parameters as a clean run."""
  overrides = [('data.data_dir', mnist_dir), ('num_train_steps', 30), ('checkpoint_every', 5),
               ('data.batch_size', 64), ('data.train_size', 256), ('attack.num_steps', 5),
               ('eval_attack.num_steps', 5), ('model.width', 0.25)]
  args = ['tradeoff.main', '--config=configs/mnist_linf.py:smoke',
          *[f'--config.{k}={v}' for k, v in overrides]]
  clean, killed = str(tmp_path / 'clean'), str(tmp_path / 'killed')
  clean_results = train.train_and_evaluate(  # the same config, in this process
      load_config(repo_root, 'mnist_linf.py:smoke', overrides), clean)

  proc = _cli(repo_root, *args, f'--workdir={killed}')
  ckpt_dir = os.path.join(killed, 'checkpoints')
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    steps = [int(d) for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
    if steps and max(steps) >= 10:
      break
    time.sleep(0.02)
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  assert not os.path.exists(os.path.join(killed, 'results.json')), 'the run ended before the kill'
  killed_at = workdir_lib.checkpoint_manager(killed).latest_step()
  assert 10 <= killed_at < 30

  proc = _cli(repo_root, *args, f'--workdir={killed}')
  out = proc.communicate(timeout=600)[0]
  assert proc.returncode == 0, out
  assert f'Resumed from step {killed_at}' in out
  step_a, params_a = _final_params(clean)
  step_b, params_b = _final_params(killed)
  assert step_a == step_b == 30
  jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
  results = json.load(open(os.path.join(killed, 'results.json')))
  assert results['resumed_from_step'] == killed_at
  assert results['robust_accuracy'] == clean_results['robust_accuracy']
  assert results['variables_sha'] == clean_results['variables_sha']


@pytest.mark.slow
def test_cli_overrides_typos_and_reevaluation(mnist_dir, repo_root, tmp_path):
  workdir = str(tmp_path / 'run')
  proc = _cli(repo_root, 'tradeoff.main', '--config=configs/mnist_linf.py:smoke',
              f'--workdir={workdir}', f'--config.data.data_dir={mnist_dir}',
              '--config.eps=0.2', '--config.loss.name=trades', '--config.model.width=0.25')
  out = proc.communicate(timeout=600)[0]
  assert proc.returncode == 0, out
  results = json.load(open(os.path.join(workdir, 'results.json')))
  assert results['config']['loss']['name'] == 'trades'
  assert results['train_attack']['eps'] == results['eval_attack']['eps'] == 0.2
  assert results['eval_attack']['step_size'] == pytest.approx(0.2 * 2.5 / 3)

  proc = _cli(repo_root, 'tradeoff.evaluate', f'--workdir={workdir}',
              '--config.eval_attack.num_steps=10', '--config.eval_attack.restarts=3',
              '--config.eval_attack.eps=0.3')
  out = proc.communicate(timeout=600)[0]
  assert proc.returncode == 0, out
  ev = json.load(open(os.path.join(workdir, 'evaluations', 'linf_eps0.3_pgd10x3.json')))
  assert (ev['eval_attack']['num_steps'], ev['eval_attack']['restarts']) == (10, 3)
  assert ev['checkpoint_step'] == 4 and ev['num_examples'] == 100
  assert ev['robust_accuracy'] <= ev['clean_accuracy'] == results['clean_accuracy']

  proc = _cli(repo_root, 'tradeoff.main', '--config=configs/mnist_linf.py:smoke',
              f'--workdir={tmp_path / "typo"}', '--config.atack.eps=0.1')
  out = proc.communicate(timeout=600)[0]
  errors_said = [l for l in out.splitlines() if 'error' in l]   # JAX may log INFO lines too
  assert proc.returncode == 2 and len(errors_said) == 1 and "did you mean 'attack.eps'" in out
  proc = _cli(repo_root, 'tradeoff.main', '--config=configs/mnist_linf.py:smoke',
              f'--workdir={tmp_path / "badloss"}', '--config.loss.name=pgd',
              f'--config.data.data_dir={mnist_dir}')
  out = proc.communicate(timeout=600)[0]
  assert proc.returncode != 0 and "Unknown loss 'pgd'" in out and 'pgd_at' in out


def test_autoattack_evaluation_records_each_stage(mnist_dir, repo_root, tmp_path):
  config = load_config(repo_root, 'mnist_linf.py:smoke', [
      ('data.data_dir', mnist_dir), ('model.width', 0.25), ('eval_attack.name', 'autoattack'),
      ('eval_attack.autoattack.apgd_steps', 5), ('eval_attack.autoattack.targets', 3),
      ('eval_attack.autoattack.fab_steps', 5), ('eval_attack.autoattack.square_queries', 20),
      ('num_robust_eval_examples', 40)])
  results = train.train_and_evaluate(config, str(tmp_path))
  stages = results['robust_accuracy_by_stage']
  assert [s['attack'] for s in stages] == ['apgd_ce', 'apgd_t3', 'fab_t3', 'square']
  assert results['eval_attack']['name'] == 'autoattack_custom'   # the smoke settings are not the standard version
  assert [s['num_steps'] for s in results['eval_attack']['stages']] == [5, 5, 5, 20]
  accs = [s['robust_accuracy'] for s in stages]
  assert accs == sorted(accs, reverse=True) and accs[-1] == results['robust_accuracy']
  assert [s['attacked_points'] for s in stages[1:]] == [round(a * 40) for a in accs[:-1]]
  assert results['robust_accuracy'] <= results['robust_subset_clean_accuracy']
  assert results['num_robust_examples'] == 40 and results['num_examples'] == 100
  # The same checkpoint re-evaluated under APGD-CE alone.
  config.eval_attack.name = 'apgd_ce'
  alone = evaluation.evaluate_checkpoint(config, str(tmp_path))
  assert alone['eval_attack']['name'] == 'apgd_ce' and alone['checkpoint_step'] == 4
  # the checkpoint restored is the model training ended with, bit for bit
  assert alone['variables_sha'] == results['variables_sha']
  assert 0 <= alone['robust_accuracy'] <= alone['robust_subset_clean_accuracy']
  config.attack.name = 'apgd_ce'
  with pytest.raises(ValueError, match="attack.name='apgd_ce': training runs PGD"):
    train.train_and_evaluate(config, str(tmp_path / 'other'))
