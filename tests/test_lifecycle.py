"""A run's lifecycle: bad input fails before anything is written, faults lose nothing."""
import glob
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import configlib
from tradeoff import data
from tradeoff import errors
from tradeoff import evaluators
from tradeoff import experiment
from tradeoff import provenance
from tradeoff import train
from tradeoff import trained
from tradeoff import workdir as workdir_lib
from tiny_configs import TINY_CONFIG, tiny_config, validated_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def _cli(*args, **kwargs):
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  return subprocess.Popen([sys.executable, '-m', *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _params(workdir, step=None):
  return workdir_lib.raw_state(workdir, step)['params']


# ---------------------------------------------------------------------------
# Validation before anything is written.

@pytest.mark.parametrize('key,value,message', [
    ('data.train_size', -5, r'data.train_size=-5 must be >= 0'),
    ('data.name', 'mnits', r"Unknown data.name 'mnits'.*mnist"),
    ('model.name', 'resnet', r"Unknown model 'resnet'.*madry_cnn"),
    ('norm', 'l1', r"Unknown norm 'l1'.*linf, l2"),
    ('optim.name', 'adagrad', r"Unknown optim.name 'adagrad'.*sgd"),
    ('data.classes', (3,), r'data.classes=\(3,\) must list at least 2'),
    ('data.classes', (0, 5), r'data.classes=\(0, 5\): classes \[5\] are not in \[0, 2\)'),
    ('data.train_size', 1000, r'data.train_size=1000 must be in \[2, 64\]'),
    ('attack.num_steps', -1, r'attack.num_steps=-1 must be >= 0'),
])
def test_a_bad_config_fails_before_writing_and_the_fix_can_use_the_workdir(
    tmp_path, key, value, message):
  workdir = tmp_path / 'run'
  c = tiny_config()
  *parents, leaf = key.split('.')
  node = c
  for p in parents:
    node = node[p]
  good = node[leaf]
  node[leaf] = value
  with pytest.raises(errors.UserError, match=message):
    train.train_and_evaluate(c, str(workdir))
  assert not workdir.exists()
  node[leaf] = good
  results = train.train_and_evaluate(c, str(workdir))  # not "a different config"
  assert results['train_steps'] == 4


def test_an_attack_that_cannot_reach_the_edge_of_its_ball_is_refused():
  with pytest.raises(errors.UserError, match=r'cannot reach the edge.*20 × step_size=0.0075'):
    attacks.Attack(norm='linf', eps=0.3, num_steps=20, step_size=0.0075)
  attacks.Attack(norm='linf', eps=0.3, num_steps=40, step_size=0.0075)  # 0.3: reaches it
  attacks.Attack(norm='linf', eps=0.3, num_steps=1, step_size=0.375)    # FGSM-RS


def test_the_step_follows_the_number_of_steps_unless_set():
  c = configlib.load(os.path.join(REPO, 'configs', 'mnist_linf.py'))
  c.eval_attack.num_steps = 20
  ev = configlib.resolve(c).eval_attack
  assert ev.step_size == pytest.approx(c.eval_attack.step_scale * 0.3 / 20)
  assert 20 * ev.step_size >= 0.3
  c.eval_attack.step_size = 0.0075  # set explicitly: kept, and refused as too short
  with pytest.raises(errors.UserError, match='cannot reach the edge'):
    experiment.validate(c)


def test_a_saved_legacy_step_size_reads_as_the_same_step_and_then_follows(tmp_path):
  """Older config.json files hold rel_step_size r (step r·ε): read as step_scale r·k,
  the same step; an override of num_steps then moves the step with it."""
  c = tiny_config()
  saved = workdir_lib.as_json(c)
  for block, k in (('attack', 7), ('eval_attack', 100)):
    del saved[block]['step_scale']
    saved[block]['num_steps'] = k
    saved[block]['rel_step_size'] = 2.5 / k
  json.dump(saved, open(tmp_path / 'config.json', 'w'))
  loaded = workdir_lib.load_config(str(tmp_path))
  assert loaded.eval_attack.step_scale == 2.5 and 'rel_step_size' not in loaded.eval_attack
  assert configlib.resolve(loaded).eval_attack.step_size == pytest.approx(2.5 * 0.1 / 100)
  loaded.eval_attack.num_steps = 20
  assert configlib.resolve(loaded).eval_attack.step_size == pytest.approx(2.5 * 0.1 / 20)
  same = tiny_config()
  same.attack.num_steps, same.eval_attack.num_steps = 7, 100
  assert workdir_lib.config_diff(saved, workdir_lib.as_json(same)) == []


def test_a_saved_config_without_autoattack_settings_reads_with_the_standard_ones(tmp_path):
  """Runs saved before the `autoattack` group existed, or before one of its fields did,
  load with AutoAttack's standard settings filled in and still match today's config."""
  c = tiny_config()
  saved = workdir_lib.as_json(c)
  del saved['attack']['autoattack']
  del saved['eval_attack']['autoattack']['square_rescale_schedule']
  saved['eval_attack']['autoattack']['square_queries'] = 1000   # a value the run chose
  json.dump(saved, open(tmp_path / 'config.json', 'w'))
  loaded = workdir_lib.load_config(str(tmp_path))
  assert loaded.attack.autoattack.to_dict() == configlib.autoattack_config().to_dict()
  assert loaded.eval_attack.autoattack.square_rescale_schedule is False
  assert loaded.eval_attack.autoattack.square_queries == 1000
  same = tiny_config()
  same.eval_attack.autoattack.square_queries = 1000
  assert workdir_lib.config_diff(saved, workdir_lib.as_json(same)) == []
  assert workdir_lib.config_diff(saved, workdir_lib.as_json(tiny_config())) == [
      'eval_attack.autoattack.square_queries']


# ---------------------------------------------------------------------------
# Missing data.

def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_first_run_offline_fails_in_seconds_saying_how_to_get_the_data(tmp_path, monkeypatch):
  # The download servers are replaced by a closed port on this machine: no
  # traffic leaves it, and the connection is refused as offline ones are.
  port = _closed_port()
  monkeypatch.setattr(data, '_download_hosts', lambda builder: [('127.0.0.1', port)])
  c = configlib.load(os.path.join(REPO, 'configs', 'mnist_linf.py:smoke'))
  c.data.data_dir = str(tmp_path / 'tfds')
  t0 = time.time()
  with pytest.raises(errors.DataNotFoundError) as e:
    train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert time.time() - t0 < 30
  message = str(e.value)
  for needed in ("'mnist' is not prepared", 'cannot be reached', 'TFDS_DATA_DIR',
                 'tfds build mnist', 'data.download'):
    assert needed in message
  assert '\n' not in message
  assert not (tmp_path / 'run').exists()
  assert not glob.glob(str(tmp_path / 'tfds' / '**' / '*incomplete*'), recursive=True)
  c.data.download = False
  with pytest.raises(errors.DataNotFoundError, match="not prepared.*TFDS_DATA_DIR"):
    train.train_and_evaluate(c, str(tmp_path / 'run'))


def test_can_connect_is_false_for_a_closed_port():
  assert not data.can_connect('127.0.0.1', _closed_port(), timeout=2.0)


# ---------------------------------------------------------------------------
# Damaged checkpoints.

def _damage(path):
  with open(path, 'r+b') as f:
    f.truncate(max(os.path.getsize(path) // 2, 1) - 1)


def _array_files(step_dir):
  files = [p for p in glob.glob(os.path.join(step_dir, 'state', '**', '*'), recursive=True)
           if os.path.isfile(p) and os.sep + 'd' + os.sep in p]
  assert files, os.listdir(os.path.join(step_dir, 'state'))
  return files


@pytest.mark.parametrize('what', ['array', 'metadata'])
def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_readable_one(
    tmp_path, caplog, what):
  c = tiny_config()
  first = train.train_and_evaluate(c, str(tmp_path))
  params_first = _params(str(tmp_path))
  step_dir = os.path.join(workdir_lib.checkpoint_dir(str(tmp_path)), '4')
  if what == 'array':
    for f in _array_files(step_dir):
      _damage(f)
  else:
    _damage(os.path.join(step_dir, 'meta', 'metadata'))
  with caplog.at_level(logging.WARNING):
    again = train.train_and_evaluate(c, str(tmp_path))
  warned = ' '.join(r.getMessage() for r in caplog.records)
  assert 'step 4' in warned and step_dir in warned and 'cannot be read' in warned
  assert again['resumed_from_step'] == 2
  assert os.path.isdir(os.path.join(workdir_lib.checkpoint_dir(str(tmp_path)), 'damaged', '4'))
  jax.tree.map(np.testing.assert_array_equal, params_first, _params(str(tmp_path)))
  assert again['robust_accuracy'] == first['robust_accuracy']


def test_no_readable_checkpoint_is_an_error_naming_the_steps(tmp_path):
  c = tiny_config()
  train.train_and_evaluate(c, str(tmp_path))
  for step in (2, 4):
    _damage(os.path.join(workdir_lib.checkpoint_dir(str(tmp_path)), str(step), 'meta',
                         'metadata'))
  with pytest.raises(errors.DataNotFoundError, match=r'No readable checkpoint.*\[4, 2\]'):
    train.train_and_evaluate(c, str(tmp_path))


# ---------------------------------------------------------------------------
# Signals and command-line errors.

@pytest.fixture
def config_file(tmp_path):
  path = tmp_path / 'tiny.py'
  path.write_text(TINY_CONFIG)
  return str(path)


@pytest.fixture(scope='module')
def uninterrupted_1000_steps(tmp_path_factory):
  c = tiny_config()
  c.num_train_steps, c.checkpoint_every, c.log_every = 1000, 1000000, 10
  workdir = str(tmp_path_factory.mktemp('clean'))
  return train.train_and_evaluate(c, workdir), _params(workdir)


@pytest.mark.slow
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_current_step_and_the_resumed_run_is_bit_identical(
    tmp_path, config_file, sig, uninterrupted_1000_steps):
  # No scheduled checkpoint before the end: a checkpoint before step 1000 is the signal's.
  args = ['tradeoff.main', f'--config={config_file}', '--config.num_train_steps=1000',
          '--config.checkpoint_every=1000000', '--config.log_every=10']
  stopped = str(tmp_path / 'stopped')
  proc = _cli(*args, f'--workdir={stopped}')
  metrics = os.path.join(stopped, 'metrics.jsonl')
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None and not (
      os.path.exists(metrics) and os.path.getsize(metrics) > 0):
    time.sleep(0.02)
  proc.send_signal(sig)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 128 + sig, err
  name = signal.Signals(sig).name
  assert f'stopped by {name} at step' in err
  saved = workdir_lib.checkpoint_manager(stopped).latest_step()
  assert 10 <= saved < 1000
  assert f'at step {saved}/1000' in err
  assert not os.path.exists(os.path.join(stopped, 'results.json'))

  proc = _cli(*args, f'--workdir={stopped}')
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == 0, err
  resumed = json.load(open(os.path.join(stopped, 'results.json')))
  assert resumed['resumed_from_step'] == saved

  clean, clean_params = uninterrupted_1000_steps
  jax.tree.map(np.testing.assert_array_equal, clean_params, _params(stopped))
  assert resumed['robust_accuracy'] == clean['robust_accuracy']


@pytest.mark.slow
def test_user_errors_are_one_line_and_bugs_keep_their_traceback(tmp_path, config_file):
  cases = [
      (['tradeoff.main', '--config=configs/nope.py', f'--workdir={tmp_path}/a'],
       "--config=configs/nope.py: file 'configs/nope.py' not found."),
      (['tradeoff.main', f'--config={config_file}', f'--workdir={tmp_path}/b',
        '--config.data.train_size=-5'], 'data.train_size=-5 must be >= 0'),
      (['tradeoff.evaluate', f'--workdir={tmp_path}/none'], 'is not a tradeoff run directory'),
      (['tradeoff.main', '--config=configs/mnist_linf.py:smok', f'--workdir={tmp_path}/c'],
       "Unknown config variant 'smok'"),
      (['tradeoff.figures', 'reference', '--spec.reference_attack.num_steps=20'],
       '--spec.reference_attack.num_steps overrides a field of --spec, which is not given'),
  ]
  procs = [(_cli(*args), expected) for args, expected in cases]
  for proc, expected in procs:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = [l for l in err.splitlines() if 'error:' in l]
    assert len(lines) == 1 and expected in lines[0], err
    assert 'Traceback' not in err
  assert not os.path.exists(f'{tmp_path}/b')


@pytest.mark.slow
def test_every_entry_point_describes_its_flags_with_help():
  entry_points = {'tradeoff.main': ['--config', '--workdir'],
                  'tradeoff.evaluate': ['--workdir', '--output', '--config'],
                  'tradeoff.export': ['--workdir', '--output', '--step'],
                  'tradeoff.figures': ['--results', '--plot_only', '--datasets'],
                  'tradeoff.bench': ['--mode', '--pgd_steps', '--output'],
                  'launch.sweep': ['--sweep', '--parallel', '--dry_run']}
  procs = {m: _cli(m, '--help') for m in entry_points}
  for module, names in entry_points.items():
    out, err = procs[module].communicate(timeout=300)
    assert 'Traceback' not in err, err  # absl exits with status 1 after --help
    for name in names:
      assert name in out, (module, name, out)


# ---------------------------------------------------------------------------
# What a model needs outside tradeoff, and where the run came from.

def test_workdir_records_the_model_and_an_export_rebuilds_it(tmp_path):
  c = tiny_config()
  c.model.normalize = True
  results = train.train_and_evaluate(c, str(tmp_path / 'run'))
  record = json.load(open(tmp_path / 'run' / 'model.json'))
  assert record['model']['name'] == 'linear' and record['num_classes'] == 2
  assert record['normalization']['applied_inside_model'] is True
  assert len(record['normalization']['mean']) == len(record['normalization']['std']) >= 1
  assert record['input_shape'] == [21]

  out = trained.export(str(tmp_path / 'run'), str(tmp_path / 'export'))
  with np.load(os.path.join(out, 'variables.npz')) as z:
    assert sorted(z.files) == ['params/dense/bias', 'params/dense/kernel']
  module, variables, exported = trained.load_export(out)
  assert exported['checkpoint_step'] == 4
  assert exported['accuracy']['clean_accuracy'] == results['clean_accuracy']
  exp, states = experiment.restore(workdir_lib.load_config(str(tmp_path / 'run')),
                                   str(tmp_path / 'run'))
  state = states[4]
  x = exp.ds.x_test[:8]
  want = exp.module.apply({'params': state.params}, x)
  np.testing.assert_array_equal(module.apply(variables, x), want)


def test_provenance_names_the_host_precisely():
  host = provenance.host()
  assert host['cpu'] and host['cores'] >= 1
  assert set(host['cpu_flags']) <= set(provenance._CPU_FLAGS)  # pylint: disable=protected-access
  flags = open('/proc/cpuinfo').read() if os.path.exists('/proc/cpuinfo') else ''
  if ' avx2' in flags:
    assert 'avx2' in host['cpu_flags']
  assert host['cpu'] in provenance.device_description()


def _validated_config():
  c = validated_config(eval_every=2)
  c.checkpoint_every = 2
  c.max_checkpoints = 10
  return c


def test_the_best_validation_checkpoint_is_kept_and_evaluated_beside_the_last(tmp_path):
  wd = str(tmp_path / 'run')
  results = train.train_and_evaluate(_validated_config(), wd)
  evals = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  val = [(e['step'], e['val/robust_accuracy']) for e in evals if 'val/robust_accuracy' in e]
  assert [s for s, _ in val] == list(range(2, 13, 2))       # every eval_every and the last
  assert all('train_eval/robust_accuracy' in e for e in evals if 'val/robust_accuracy' in e)
  best_step, best_acc = max(val, key=lambda sv: (sv[1], -sv[0]))   # first of the best
  best = results['best_checkpoint']
  assert (best['step'], best['validation']['robust_accuracy']) == (best_step, best_acc)
  assert best['validation']['num_examples'] == 32
  assert results['last_checkpoint_validation']['robust_accuracy'] == val[-1][1]
  assert results['data']['validation']['per_class'] == [16, 16]
  # The kept checkpoint is the state at that step, and its test numbers are its own.
  mngr = workdir_lib.best_checkpoint_manager(wd)
  assert mngr.all_steps() == [best_step]
  kept = mngr.restore(best_step, args=workdir_lib.ocp.args.Composite(
      state=workdir_lib.ocp.args.StandardRestore()))['state']['params']
  jax.tree.map(np.testing.assert_array_equal, kept, _params(wd, best_step))
  exp, states = experiment.restore(workdir_lib.load_config(wd), wd, steps=[best_step])
  assert best['test']['clean_accuracy'] == pytest.approx(
      _clean_accuracy(exp, states[best_step]), abs=1e-9)


def _clean_accuracy(exp, state):
  from tradeoff import models  # pylint: disable=g-import-not-at-top
  logits = models.apply(exp.module, state.params, state.model_state,
                        data.to_float(exp.ds.x_test), train=False)[0]
  return float(np.mean(np.asarray(models.predict(logits)) == exp.ds.y_test))


def test_a_run_killed_between_evaluations_keeps_the_same_best_checkpoint(tmp_path, monkeypatch):
  clean = train.train_and_evaluate(_validated_config(), str(tmp_path / 'clean'))
  real = evaluators.accuracy.evaluate_clean_and_robust
  calls = []

  wd = str(tmp_path / 'killed')

  def dies_at_step_ten(*args, **kwargs):   # in the validation pass of the 5th evaluation
    calls.append(1)
    if len(calls) == 15:
      # The step-8 checkpoint is written asynchronously; the kill comes once it is on
      # disk, so the run is known to resume from step 8.
      deadline = time.time() + 60
      while not os.path.isdir(os.path.join(wd, 'checkpoints', '8')) and time.time() < deadline:
        time.sleep(0.01)
      raise KeyboardInterrupt('killed')
    return real(*args, **kwargs)

  monkeypatch.setattr(evaluators.accuracy, 'evaluate_clean_and_robust', dies_at_step_ten)
  with pytest.raises(KeyboardInterrupt):
    train.train_and_evaluate(_validated_config(), wd)
  monkeypatch.setattr(evaluators.accuracy, 'evaluate_clean_and_robust', real)
  assert not os.path.exists(os.path.join(wd, 'results.json'))
  resumed = train.train_and_evaluate(_validated_config(), wd)
  assert resumed['resumed_from_step'] == 8
  assert _untimed(resumed['best_checkpoint']) == _untimed(clean['best_checkpoint'])
  assert (_untimed(resumed['last_checkpoint_validation'])
          == _untimed(clean['last_checkpoint_validation']))


def _untimed(record):
  """An evaluation record without its wall times."""
  if isinstance(record, dict):
    return {k: _untimed(v) for k, v in record.items() if not k.endswith('time_s')}
  return record
