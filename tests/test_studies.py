"""Studies over collected sweeps: robust overfitting (curves, peak, kept and last
checkpoints), re-evaluation under AutoAttack, and the standard-vs-robust frontier."""
import json
import os

import numpy as np
import pytest

from launch import sweep as sweep_lib
from tradeoff import train
from tradeoff.figures import common
from tradeoff.figures import overfitting
import tiny_configs


def _collected(tmp_path, runs):
  recs = []
  for name, config in runs:
    wd = str(tmp_path / name)
    results = train.train_and_evaluate(config, wd)
    recs.append({'name': name, 'workdir': wd, 'status': 'finished', 'config': results['config'],
                 **{k: results[k] for k in sweep_lib.RESULT_FIELDS if k in results}})
  return common.write_json(str(tmp_path / 'tiny_sweep.json'),
                           {'sweep': {'name': 'tiny_sweep'}, 'runs': recs})


def test_curves_peak_and_early_stopping_come_from_the_runs_records(tmp_path):
  path = _collected(tmp_path, [('run', tiny_configs.validated_config())])
  paths = overfitting.run(path, str(tmp_path), str(tmp_path), False)
  res = common.read_json(paths[0])
  (r,) = res['runs']
  results = json.load(open(os.path.join(r['workdir'], 'results.json')))
  assert [s for s, _ in r['curves']['validation']] == [3, 6, 9, 12]
  assert [s for s, _ in r['curves']['test']] == [3, 6, 9, 12]
  assert [s for s, _ in r['curves']['train']] == [3, 6, 9, 12]
  assert r['curves']['test'][-1][1] == r['test_robust_last'] == results['robust_accuracy']
  best = max(r['curves']['validation'], key=lambda sv: (sv[1], -sv[0]))
  assert r['best_step'] == best[0] == results['best_checkpoint']['step']
  assert r['test_robust_best'] == results['best_checkpoint']['test']['robust_accuracy']
  assert r['test_robust_at_peak'] == max(v for _, v in r['curves']['test'])
  assert r['fall_after_peak'] == pytest.approx(r['test_robust_at_peak'] - r['test_robust_last'])
  assert r['steps_per_epoch'] == 64 / 16 and r['num_validation'] == 32
  assert os.path.exists(paths[1])


def test_a_run_without_a_validation_split_is_refused(tmp_path):
  c = tiny_configs.tiny_config()
  path = _collected(tmp_path, [('plain', c)])
  with pytest.raises(ValueError, match='data.validation_size > 0'):
    overfitting.run(path, str(tmp_path), str(tmp_path), False)


def test_a_resumed_runs_repeated_steps_count_once(tmp_path):
  wd = tmp_path / 'w'
  wd.mkdir()
  lines = [{'step': 3, 'eval/robust_accuracy': 0.5}, {'step': 6, 'eval/robust_accuracy': 0.6},
           {'step': 6, 'eval/robust_accuracy': 0.6, 'val/robust_accuracy': 0.7},
           {'step': 9, 'train/loss': 1.0}]
  (wd / 'metrics.jsonl').write_text('\n'.join(json.dumps(l) for l in lines) + '\n')
  curves = overfitting.read_curves(str(wd))
  assert curves['test'] == [(3, 0.5), (6, 0.6)] and curves['validation'] == [(6, 0.7)]


def _mnist_mlp(mnist_dir, eps):
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  c = configlib.load('configs/mnist_linf.py:smoke')
  c.data.data_dir, c.eps = mnist_dir, eps
  c.model.name, c.model.hidden = 'mlp', (16,)
  c.num_eval_examples, c.tensorboard = 50, False
  return c


def test_reevaluation_replaces_robust_numbers_keeps_the_old_and_is_not_repeated(
    tmp_path, monkeypatch, mnist_dir):
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff import evaluation  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import reevaluate  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import sweeps  # pylint: disable=g-import-not-at-top
  standard, robust = _mnist_mlp(mnist_dir, 0.0), _mnist_mlp(mnist_dir, 0.1)
  path = _collected(tmp_path, [('eps=0', standard), ('eps=0.1', robust)])
  collected = common.read_json(path)
  collected['sweep_file'] = 'tiny.py'
  settings = configlib.autoattack_config()
  settings.apgd_steps = 10
  out = reevaluate.reevaluate(collected, 'autoattack_fast', settings=settings)
  std, rob = out['runs']
  assert std == collected['runs'][0]                       # ε = 0: as it was
  assert rob['eval_attack']['name'] == 'autoattack_fast_custom'   # 10 APGD steps, not 100
  assert rob['previous_evaluation']['robust_accuracy'] == collected['runs'][1]['robust_accuracy']
  assert rob['previous_evaluation']['eval_attack']['name'].startswith('pgd')
  assert [s['attack'] for s in rob['reevaluation']['robust_accuracy_by_stage']] == [
      'apgd_ce', 'apgd_t9']
  assert rob['reevaluation']['checkpoint_step'] == rob['train_steps']
  assert 'AutoAttack fast' in sweeps._eval_label(out)   # pylint: disable=protected-access

  def no_evaluation(*args, **kwargs):
    raise AssertionError('evaluated again')
  monkeypatch.setattr(evaluation, 'evaluate_checkpoint', no_evaluation)
  again = reevaluate.reevaluate(collected, 'autoattack_fast', previous=out, settings=settings)
  assert again['runs'] == out['runs']
  with pytest.raises(ValueError, match="Unknown re-evaluation attack 'pgd'.*autoattack_fast"):
    reevaluate.reevaluate(collected, 'pgd')


def test_pareto_front_and_the_comparison_of_two_fronts():
  from tradeoff.figures import frontier  # pylint: disable=g-import-not-at-top
  pts = [(0.0, 0.99), (0.5, 0.98), (0.4, 0.97), (0.8, 0.95), (0.8, 0.90), (0.9, 0.80)]
  front = frontier.pareto_front(pts)
  assert front == [(0.0, 0.99), (0.5, 0.98), (0.8, 0.95), (0.9, 0.80)]
  assert frontier.clean_at_robust(front, 0.6) == 0.95
  assert frontier.clean_at_robust(front, 0.95) is None
  other = frontier.pareto_front([(0.2, 0.97), (0.85, 0.93)])
  cmp = frontier.compare(front, other, num=3)   # levels 0.2, 0.525, 0.85
  assert cmp['overlap'] == [0.2, 0.85]
  np.testing.assert_allclose(cmp['difference'], [0.98 - 0.97, 0.95 - 0.93, 0.80 - 0.93])
  assert cmp['largest_difference'] == pytest.approx(-0.13) and cmp['at_robust_accuracy'] == 0.85
  assert frontier.compare(front, [(0.95, 0.5), (0.97, 0.4)])['overlap'] is None


def test_frontier_of_runs_on_the_synthetic_distribution_carries_theorem_2_1(tmp_path):
  from tradeoff import theory  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import frontier  # pylint: disable=g-import-not-at-top
  runs = []
  for loss, eps, beta in (('standard', 0.0, 6.0), ('pgd_at', 0.1, 6.0), ('trades', 0.1, 1.0),
                          ('trades', 0.1, 6.0)):
    c = tiny_configs.tiny_config()
    c.loss.name, c.loss.beta, c.attack.eps = loss, beta, eps
    runs.append((f'{loss}_{eps}_{beta}', c))
  path = _collected(tmp_path, runs)
  paths = frontier.run([path], str(tmp_path), str(tmp_path), False)
  res = common.read_json(paths[0])
  assert sorted(res['points']) == ['pgd_at', 'trades']
  assert [q['value'] for q in res['points']['pgd_at']] == [0.0, 0.1]
  assert [q['value'] for q in res['points']['trades']] == [1.0, 6.0]
  p = res['theorem_2_1']['p']
  excess = max(q['robust_accuracy'] - theory.robust_accuracy_bound(q['clean_accuracy'], p)
               for pts in res['points'].values() for q in pts)
  assert res['theorem_2_1']['max_excess_over_bound'] == pytest.approx(excess)
  assert 'trades_minus_pgd_at' in res['comparisons'] and os.path.exists(paths[1])
  # Points evaluated under different attacks are not one frontier.
  mixed = common.read_json(path)
  mixed['runs'][0]['eval_attack'] = dict(mixed['runs'][0]['eval_attack'], name='pgd50')
  with pytest.raises(ValueError, match='different attacks'):
    frontier.frontier_experiment([common.write_json(str(tmp_path / 'mixed.json'), mixed)])


def test_robust_self_training_relabels_all_but_the_teachers_examples(tmp_path):
  from tradeoff import data  # pylint: disable=g-import-not-at-top
  from tradeoff import experiment  # pylint: disable=g-import-not-at-top
  from tradeoff import models  # pylint: disable=g-import-not-at-top
  from tradeoff import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  teacher_cfg = tiny_configs.tiny_config()
  teacher_cfg.attack.eps, teacher_cfg.data.train_size = 0.0, 20   # evaluated at the config's ε
  teacher_wd = str(tmp_path / 'teacher')
  teacher_results = train.train_and_evaluate(teacher_cfg, teacher_wd)

  student = tiny_configs.tiny_config()
  student.data.labelled_size, student.data.pseudo_label_from = 20, teacher_wd
  exp = experiment.build(student)
  full = data.load(tiny_configs.tiny_config().data, 0)
  labelled = data.balanced_subset_indices(full.y_train, 20, 2, seed=0)
  other = np.setdiff1d(np.arange(64), labelled)
  np.testing.assert_array_equal(exp.ds.y_train[labelled], full.y_train[labelled])
  t_exp, states = experiment.restore(workdir_lib.load_config(teacher_wd), teacher_wd)
  st = states[max(states)]
  teacher_says = np.asarray(models.predict(models.apply(
      t_exp.module, st.params, st.model_state, data.to_float(full.x_train[other]), False)[0]))
  np.testing.assert_array_equal(exp.ds.y_train[other], teacher_says)
  info = exp.ds.info['pseudo_labels']
  assert (info['num_labelled'], info['num_pseudo_labelled']) == (20, 44)
  assert info['pseudo_label_accuracy'] == pytest.approx(np.mean(teacher_says == full.y_train[other]))
  assert info['teacher_clean_accuracy'] == teacher_results['clean_accuracy']
  results = train.train_and_evaluate(student, str(tmp_path / 'student'))
  assert results['data']['pseudo_labels'] == info
  adversarial = tiny_configs.tiny_config()
  adversarial.data.train_size = 20
  path = _collected(tmp_path / 'sweep', [('std', teacher_cfg), ('adv', adversarial),
                                         ('rst', student)])
  from tradeoff.figures import rst  # pylint: disable=g-import-not-at-top
  paths = rst.run(path, str(tmp_path), str(tmp_path), False)
  (row,) = common.read_json(paths[0])['rows']
  assert row['num_labelled'] == 20
  assert row['robust self-training']['robust_accuracy'] == results['robust_accuracy']
  assert row['standard']['clean_accuracy'] == teacher_results['clean_accuracy']
  assert row['adversarial clean gap to standard'] == pytest.approx(
      row['adversarial']['clean_accuracy'] - teacher_results['clean_accuracy'])
  assert os.path.basename(paths[0]) == 'compare_tiny_sweep.json'
  assert row['standard']['eval_attack']['eps'] == results['eval_attack']['eps'] > 0
  # A standard run evaluated at ε = 0 has no robust accuracy to compare: refused.
  mixed = common.read_json(path)
  mixed['runs'][0]['eval_attack'] = dict(mixed['runs'][0]['eval_attack'], eps=0.0)
  with pytest.raises(ValueError, match=r"different attacks .*\['std'\].*needs one"):
    rst.rst_experiment(common.write_json(str(tmp_path / 'mixed.json'), mixed))

  wrong = tiny_configs.tiny_config()
  wrong.data.labelled_size, wrong.data.pseudo_label_from = 30, teacher_wd
  with pytest.raises(ValueError, match=r"data.train_size: 20 \(this run's data.labelled_size: 30\)"):
    experiment.build(wrong)
  wrong.seed = 1
  wrong.data.labelled_size = 20
  with pytest.raises(ValueError, match=r'seed: 0 \(this run: 1\)'):
    experiment.build(wrong)
  alone = tiny_configs.tiny_config()
  alone.data.labelled_size = 20
  with pytest.raises(ValueError, match='go together'):
    experiment.build(alone)
  alone.data.pseudo_label_from, alone.data.train_size = teacher_wd, 40
  with pytest.raises(ValueError, match='robust self-training uses the whole training set'):
    experiment.build(alone)
  alone.data.train_size, alone.data.pseudo_label_from = 0, str(tmp_path / 'nope')
  with pytest.raises(ValueError, match='is not a finished run'):
    experiment.build(alone)
