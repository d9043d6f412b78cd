"""A trained run as an artifact: it opens without its data, loss module or teacher;
its files are written atomically and read back through damage; one trainer per
workdir; user errors on one line."""
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests import tiny_configs
from tradeoff import accuracy
from tradeoff import data
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import experiment
from tradeoff import losses
from tradeoff import train
from tradeoff import trained
from tradeoff import workdir as workdir_lib
from tradeoff import writers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CUSTOM_LOSS = '''
import pathlib, os
from tradeoff import losses
pathlib.Path(os.environ['IMPORT_MARKER']).write_text('imported')

def clean_ce(params, model_state, batch, rng, ctx):
  return losses.get('standard')(params, model_state, batch, rng, ctx)
'''


def _forbid(monkeypatch, module, name, what):
  def refuse(*args, **kwargs):
    raise AssertionError(f'{what} was used: {args[:1]}')
  monkeypatch.setattr(module, name, refuse)


def _custom_loss_run(tmp_path, monkeypatch) -> tuple[str, dict]:
  """A finished tiny run trained with loss.name='portable_loss_mod:clean_ce'."""
  pkg = tmp_path / 'lossmod'
  pkg.mkdir()
  (pkg / 'portable_loss_mod.py').write_text(CUSTOM_LOSS)
  monkeypatch.setenv('IMPORT_MARKER', str(tmp_path / 'marker'))
  monkeypatch.syspath_prepend(str(pkg))
  c = tiny_configs.tiny_config()
  c.loss.name, c.attack.eps = 'portable_loss_mod:clean_ce', 0.0
  wd = str(tmp_path / 'run')
  results = train.train_and_evaluate(c, wd)
  assert (tmp_path / 'marker').exists()
  return wd, results


def test_export_and_evaluate_need_neither_the_loss_module_nor_the_training_data(
    tmp_path, monkeypatch):
  wd, results = _custom_loss_run(tmp_path, monkeypatch)
  sys.modules.pop('portable_loss_mod', None)
  monkeypatch.setattr(sys, 'path', [p for p in sys.path if 'lossmod' not in p])
  _forbid(monkeypatch, losses, 'get', 'the loss registry')
  _forbid(monkeypatch, experiment, 'build', 'the training experiment')
  # export reads no data at all
  _forbid(monkeypatch, data, 'load', 'the dataset')
  out = trained.export(wd, str(tmp_path / 'export'))
  module, variables, record = trained.load_export(out)
  assert record['checkpoint_step'] == 4 and record['format'] == trained.EXPORT_FORMAT
  assert record['train_attack']['eps'] == 0.0 and record['eval_attack']['eps'] == 0.1
  assert record['variables_sha'] == results['variables_sha']
  monkeypatch.undo()
  # evaluate reads the test split only, and gives the training's own numbers
  monkeypatch.setattr(sys, 'path', [p for p in sys.path if 'lossmod' not in p])
  sys.modules.pop('portable_loss_mod', None)
  _forbid(monkeypatch, losses, 'get', 'the loss registry')
  _forbid(monkeypatch, experiment, 'build', 'the training experiment')
  again = evaluation.evaluate_checkpoint(workdir_lib.load_config(wd), wd)
  assert again['clean_accuracy'] == results['clean_accuracy']
  assert again['robust_accuracy'] == results['robust_accuracy']
  assert again['variables_sha'] == results['variables_sha']
  assert again['checks']['deterministic'] and again['checks']['batch_independent']
  assert again['checks']['zero_gradient_fraction'] == 0.0 and not again['checks']['warnings']
  run = trained.load(wd)
  x = data.to_float(data.load(workdir_lib.load_config(wd).data, 0).x_test[:8])
  np.testing.assert_array_equal(np.asarray(module.apply(variables, x)), np.asarray(run.logits(x)))


def test_evaluate_on_the_command_line_imports_nothing_the_run_config_names(tmp_path, monkeypatch):
  wd, results = _custom_loss_run(tmp_path, monkeypatch)
  os.remove(tmp_path / 'marker')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env.update(PYTHONPATH=REPO, IMPORT_MARKER=str(tmp_path / 'marker'), JAX_PLATFORMS='cpu',
             XLA_FLAGS='--xla_force_host_platform_device_count=1')
  for cmd in (['tradeoff.evaluate', f'--workdir={wd}', f'--output={tmp_path}/ev.json'],
              ['tradeoff.export', f'--workdir={wd}', f'--output={tmp_path}/exp']):
    p = subprocess.run([sys.executable, '-m', *cmd], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
  assert not (tmp_path / 'marker').exists()   # the custom loss module was never imported
  ev = json.load(open(tmp_path / 'ev.json'))
  assert ev['clean_accuracy'] == results['clean_accuracy']


def test_a_self_training_run_is_evaluated_and_exported_without_its_teacher(tmp_path, monkeypatch):
  teacher_cfg = tiny_configs.tiny_config()
  teacher_cfg.attack.eps, teacher_cfg.data.train_size = 0.0, 20
  teacher_wd = str(tmp_path / 'teacher')
  train.train_and_evaluate(teacher_cfg, teacher_wd)
  student = tiny_configs.tiny_config()
  student.data.labelled_size, student.data.pseudo_label_from = 20, teacher_wd
  wd = str(tmp_path / 'student')
  results = train.train_and_evaluate(student, wd)
  teacher = trained.load(teacher_wd)
  assert results['data']['pseudo_labels']['teacher_variables_sha'] == teacher.variables_sha
  shutil.rmtree(teacher_wd)   # the teacher is gone
  _forbid(monkeypatch, experiment, 'pseudo_labelled', 'the teacher')
  again = evaluation.evaluate_checkpoint(workdir_lib.load_config(wd), wd)
  assert again['clean_accuracy'] == results['clean_accuracy']
  assert trained.load_export(trained.export(wd))[2]['checkpoint_step'] == 4


def test_a_damaged_newest_checkpoint_is_skipped_by_an_open_that_changes_nothing(tmp_path):
  c = tiny_configs.tiny_config()
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(c, wd)
  assert trained.checkpoint_steps(wd) == [2, 4]
  for root, _, files in os.walk(os.path.join(wd, 'checkpoints', '4', 'state')):
    for f in files:
      open(os.path.join(root, f), 'wb').close()
  run = trained.load(wd)
  assert run.step == 2
  assert os.path.isdir(os.path.join(wd, 'checkpoints', '4'))   # nothing moved
  with pytest.raises(errors.DataNotFoundError, match='step 7.*saved steps: \\[2, 4\\]'):
    trained.load(wd, 7)


# ---------------------------------------------------------------------------
# Files.

def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
  path = str(tmp_path / 'a' / 'r.json')
  workdir_lib.write_json(path, {'x': 1})
  real_replace = os.replace

  def crash(*args):
    raise OSError('disk gone')
  monkeypatch.setattr(os, 'replace', crash)
  with pytest.raises(OSError):
    workdir_lib.write_json(path, {'x': 2})
  monkeypatch.setattr(os, 'replace', real_replace)
  assert json.load(open(path)) == {'x': 1}          # the old file, whole
  assert os.listdir(tmp_path / 'a') == ['r.json']   # no temporary left behind


def test_a_torn_metrics_line_is_skipped_and_later_lines_still_read(tmp_path, caplog):
  w = writers.MetricWriter(str(tmp_path), tensorboard=False)
  w.write(1, {'loss': 1.0})
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 2, "lo')      # a kill in the middle of a line
  w.write(3, {'loss': 3.0})
  with caplog.at_level(logging.WARNING):
    rows = writers.read_metrics(str(tmp_path))
  assert [r['step'] for r in rows] == [1, 3]
  assert 'line 2 is not a whole record' in caplog.text


def test_a_damaged_progress_file_restarts_the_evaluation_instead_of_crashing(tmp_path, caplog):
  path = tmp_path / 'progress.json'
  progress = accuracy.CascadeProgress(str(path), {'a': 1})
  progress.save(np.array([True, False]), [], 1, 0, 2.0, 2)
  assert progress.load(2)['stage'] == 1
  path.write_text(path.read_text()[:20])
  with caplog.at_level(logging.WARNING):
    assert progress.load(2) is None
  assert 'damaged' in caplog.text


# ---------------------------------------------------------------------------
# One trainer per workdir.

def test_a_second_trainer_on_a_held_workdir_fails_at_once_naming_the_holder(tmp_path):
  wd = str(tmp_path / 'run')
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    os.makedirs(wd)
    with open(workdir_lib.lock_path(wd), 'w') as f:
      json.dump({'pid': holder.pid, 'host': os.uname().nodename, 'started': 'then'}, f)
    with pytest.raises(errors.UserError, match=f'being trained by pid {holder.pid} on'):
      train.train_and_evaluate(tiny_configs.tiny_config(), wd)
    assert not os.path.exists(os.path.join(wd, 'checkpoints'))
  finally:
    holder.kill()
    holder.wait()
  # the holder is gone: its lock is stale and taken over; the run releases it at the end
  train.train_and_evaluate(tiny_configs.tiny_config(), wd)
  assert not os.path.exists(workdir_lib.lock_path(wd))


def test_the_lock_is_held_for_the_runs_life(tmp_path, monkeypatch):
  wd = str(tmp_path / 'run')
  seen = []
  real = train._train  # pylint: disable=protected-access

  def spy(config, workdir, *args):
    seen.append(json.load(open(workdir_lib.lock_path(workdir))))
    assert 'one trainer per workdir' in _other_process_lock(workdir)
    return real(config, workdir, *args)
  monkeypatch.setattr(train, '_train', spy)
  train.train_and_evaluate(tiny_configs.tiny_config(), wd)
  assert seen[0]['pid'] == os.getpid() and seen[0]['host'] == os.uname().nodename
  assert not os.path.exists(workdir_lib.lock_path(wd))


def _other_process_lock(workdir) -> str:
  """Tries to take the lock from another process of this host; returns its error."""
  code = textwrap.dedent(f'''
      from tradeoff import workdir
      workdir.RunLock({workdir!r}).acquire()''')
  p = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                     env={**os.environ, 'JAX_PLATFORMS': 'cpu'}, timeout=120)
  assert p.returncode != 0
  return p.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------------------
# User errors.

@pytest.mark.parametrize('override,hint', [
    ('--config.atack.eps=0.1', "did you mean 'attack.eps'"),
    ('--config.attack.epz=0.1', "did you mean 'attack.eps'"),
])
def test_a_typod_config_key_is_one_line_naming_the_closest_keys(tmp_path, override, hint):
  p = subprocess.run([sys.executable, '-m', 'tradeoff.main', '--config=configs/mnist_linf.py:smoke',
                      override, f'--workdir={tmp_path}/run'], cwd=REPO, capture_output=True,
                     text=True, env={**os.environ, 'JAX_PLATFORMS': 'cpu'}, timeout=120)
  assert p.returncode == 2
  assert p.stderr.strip().count('\n') == 0 and hint in p.stderr, p.stderr
  assert not os.path.exists(tmp_path / 'run')
