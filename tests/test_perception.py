"""Figures 2-4 (what robust models see): helpers on tiny inputs, commands on smoke runs."""
import json
import os
import re

import ml_collections
import numpy as np
import pytest

from tradeoff import configlib
from tradeoff import errors
from tradeoff import train
from tradeoff.figures import perception
from tradeoff.figures import specs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pearson_and_alignment_scores():
  rng = np.random.default_rng(0)
  x = rng.random((3, 8, 8, 1))
  np.testing.assert_allclose(perception.pearson(x, 2 * x + 1), 1.0)
  np.testing.assert_allclose(perception.pearson(x, -x), -1.0)
  np.testing.assert_array_equal(perception.pearson(x, np.ones_like(x)), 0.0)  # constant
  s = perception.alignment_scores(-x, x)   # a gradient that paints the image, negated
  assert s['abs_pearson'] == pytest.approx(1.0) and s['abs_grad_pearson'] == pytest.approx(1.0)
  noise = perception.alignment_scores(rng.normal(size=(200, 28, 28, 1)), rng.random((200, 28, 28, 1)))
  assert noise['abs_pearson'] < 0.05 and abs(noise['abs_grad_pearson']) < 0.02


def test_random_targets_are_other_classes_and_seeded():
  y = np.arange(1000) % 10
  t = perception.random_targets(y, 10, seed=3)
  assert np.all(t != y) and t.min() == 0 and t.max() == 9
  np.testing.assert_array_equal(t, perception.random_targets(y, 10, seed=3))
  assert np.bincount(t, minlength=10).min() > 60  # roughly uniform
  with pytest.raises(ValueError, match='num_classes >= 2'):
    perception.random_targets(y, 1, 0)


def test_first_of_each_class_and_gradient_image():
  np.testing.assert_array_equal(perception.first_of_each_class(np.array([2, 0, 0, 1, 2]), 3),
                                [1, 3, 0])
  with pytest.raises(ValueError, match='class 2'):
    perception.first_of_each_class(np.array([0, 1]), 3)
  grey = perception.gradient_image(np.array([[[1.0], [-1.0]]]))   # signed colours
  np.testing.assert_allclose(grey[0, 0], [1, 0, 0])
  colour = perception.gradient_image(np.zeros((2, 2, 3)))          # ±3σ rescale
  np.testing.assert_array_equal(colour, 0.5)


@pytest.fixture(scope='module')
def smoke_models(tmp_path_factory, mnist_dir):
  """Three MNIST smoke runs: standard, ℓ∞-robust, and a second standard one."""
  root = tmp_path_factory.mktemp('perception')
  dirs = {}
  for role, eps, seed in (('standard', 0.0, 0), ('robust_linf', 0.3, 0),
                          ('independent', 0.0, 1)):
    c = configlib.load(os.path.join(REPO, 'configs', 'mnist_linf.py:smoke'))
    c.data.data_dir = mnist_dir
    c.model.width = 0.25
    c.eps, c.seed, c.progress_bar, c.tensorboard = eps, seed, False, False
    dirs[role] = str(root / role)
    train.train_and_evaluate(c, dirs[role])
  return root, dirs


def _spec(dirs):
  return ml_collections.ConfigDict({
      'mnist': {**dirs, 'robust_l2': '', 'large_eps_linf': 0.3, 'large_eps_l2': 4.0},
      'num_eval_examples': 40, 'attack_steps': 3, 'step_scale': 2.5,
      'interpolation_points': 5, 'interpolation_images': 2, 'seed': 0,
      'reference_attack': {'num_steps': 3, 'restarts': 2, 'step_scale': 2.5,
                           'num_examples': 30}})


def test_figure_commands_write_results_and_pngs(smoke_models):
  root, dirs = smoke_models
  spec = _spec(dirs)
  res_dir, fig_dir = str(root / 'results'), str(root / 'figs')
  for command in perception.COMMANDS:
    png, = perception.run(command, spec, ['mnist'], res_dir, fig_dir, plot_only=False)
    assert os.path.getsize(png) > 10_000
  g = json.load(open(os.path.join(res_dir, 'gradients_mnist.json')))
  assert set(g['models']) == {'standard', 'robust_linf'} and g['num_eval_examples'] == 40
  assert g['labels'] == list(range(10)) and g['commit'] and g['device']
  assert np.asarray(g['models']['standard']['gradients']).shape == (10, 28, 28, 1)

  a = json.load(open(os.path.join(res_dir, 'adversarial_mnist.json')))
  (threat,) = a['threats']
  assert threat['norm'] == 'linf' and threat['attack']['random_start'] is False
  assert threat['attack']['num_steps'] == 3 and threat['targeted']
  x = np.asarray(a['images'])
  assert np.all(np.asarray(a['targets']) != np.asarray(a['labels']))
  for rec in threat['models'].values():
    adv = np.asarray(rec['shown_adversarial'])
    assert np.abs(adv - x).max() <= 0.3 + 2e-4          # in the ε-ball (4-decimal rounding)
    assert adv.min() >= 0 and adv.max() <= 1
    for key in ('target_success', 'independent_says_target', 'independent_says_true_class'):
      assert 0 <= rec[key] <= 1
  assert a['independent']['workdir'] == dirs['independent']

  i = json.load(open(os.path.join(res_dir, 'interpolation_mnist.json')))
  assert i['model']['role'] == 'robust_linf' and len(i['rows']) == 2
  row = i['rows'][0]
  path = np.asarray(row['path'])
  assert path.shape == (5, 28, 28, 1) and len(row['p_target']) == 5
  np.testing.assert_allclose(path[0], np.asarray(a['images'])[0], atol=1e-4)  # starts at x

  # redraw from the JSON alone
  png, = perception.run('gradients', spec, ['mnist'], res_dir, str(root / 'again'),
                        plot_only=True)
  assert os.path.exists(png)


def test_spec_errors_name_the_entry(smoke_models):
  root, dirs = smoke_models
  spec = _spec({**dirs, 'independent': ''})
  with pytest.raises(ValueError, match='mnist.independent'):
    perception.run('adversarial', spec, ['mnist'], str(root / 'r'), str(root / 'f'), False)
  with pytest.raises(ValueError, match="'cifar10' is not in the spec; valid choices: \\['mnist'\\]"):
    perception.run('gradients', spec, ['cifar10'], str(root / 'r'), str(root / 'f'), False)
  spec.mnist.standard = str(root / 'nowhere')
  with pytest.raises(FileNotFoundError, match='mnist.standard'):
    perception.run('gradients', spec, ['mnist'], str(root / 'r'), str(root / 'f'), False)


def test_default_spec_loads_and_names_runs_of_the_sweeps():
  spec = specs.load_spec(None)
  assert spec.mnist.robust_l2.startswith('runs/sweeps/figure1_mnist_l2/eps=1.5,')
  assert spec.mnist.large_eps_l2 == 4.0 and spec.cifar10.large_eps_l2 == 4.7


def _record_evaluations(monkeypatch) -> list:
  """Records each checkpoint evaluation of the reference table as (workdir, PGD steps)."""
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  calls = []
  real_evaluate = reference.evaluation.evaluate_checkpoint
  def recording_evaluate(config, workdir):
    name = config.eval_attack.name
    calls.append((workdir, config.eval_attack.num_steps) if name == 'pgd' else (workdir, name))
    return real_evaluate(config, workdir)
  monkeypatch.setattr(reference.evaluation, 'evaluate_checkpoint', recording_evaluate)
  return calls


def test_reference_table_evaluates_both_models_under_the_robust_models_threat(smoke_models,
                                                                             monkeypatch):
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  out, = reference.run(_spec(dirs), ['mnist'], str(root / 'ref'), plot_only=False)
  res = json.load(open(os.path.join(root, 'ref', 'reference_mnist.json')))
  std, rob = res['rows']
  assert (std['role'], rob['role']) == ('standard', 'robust_linf')
  for r in (std, rob):
    atk = r['eval_attack']
    assert (atk['norm'], atk['eps'], atk['num_steps'], atk['restarts']) == ('linf', 0.3, 3, 2)
    assert atk['step_size'] == pytest.approx(2.5 * 0.3 / 3)
    assert r['num_examples'] == 10000 and r['num_robust_examples'] == 30  # clean: all
    assert 0 <= r['robust_accuracy'] <= 1
  assert std['train_attack']['eps'] == 0.0 and rob['train_attack']['eps'] == 0.3
  rows = open(out).read().strip().splitlines()
  assert len(rows) == 4 and '| mnist | linf ε = 0.3 | standard (0) |' in rows[2]
  params = std['num_params']
  assert params > 0 and f'| {params / 1e3:.0f} k |' in rows[2]
  assert std['eval_commit'] == res['commit']

  # Running again keeps the rows of the same models under the same attack ...
  calls = _record_evaluations(monkeypatch)
  reference.run(_spec(dirs), ['mnist'], str(root / 'ref'), plot_only=False)
  assert not calls
  assert json.load(open(os.path.join(root, 'ref', 'reference_mnist.json')))['rows'] == res['rows']
  # ... and evaluates again under another attack.
  spec = _spec(dirs)
  spec.reference_attack.num_steps = 4
  reference.run(spec, ['mnist'], str(root / 'ref'), plot_only=False)
  assert calls == [(dirs['standard'], 4), (dirs['robust_linf'], 4)]
  reference.run(_spec(dirs), ['mnist'], str(root / 'ref'), plot_only=False)
  res = json.load(open(os.path.join(root, 'ref', 'reference_mnist.json')))

  # A model whose workdir is not here keeps its row under the same attack and
  # is an error under another one.
  away = dirs['standard'] + '.away'
  os.rename(dirs['standard'], away)
  try:
    calls.clear()
    reference.run(_spec(dirs), ['mnist'], str(root / 'ref'), plot_only=False)
    assert not calls
    assert json.load(open(os.path.join(root, 'ref', 'reference_mnist.json')))['rows'] == res['rows']
    spec = _spec(dirs)
    spec.reference_attack.restarts = 3
    with pytest.raises(FileNotFoundError, match=re.escape(dirs['standard'])):
      reference.run(spec, ['mnist'], str(root / 'ref'), plot_only=False)
  finally:
    os.rename(away, dirs['standard'])

  # A dataset evaluated by another command (e.g. CIFAR-10 from its own data
  # dir) joins the table; the paper's dataset order is kept.
  other = dict(res, dataset='cifar10',
               rows=[dict(r, dataset='cifar10', clean_accuracy=0.123) for r in res['rows']])
  json.dump(other, open(os.path.join(root, 'ref', 'reference_cifar10.json'), 'w'))
  spec = _spec(dirs)
  spec.cifar10 = dict(spec.mnist)
  out, = reference.run(spec, ['mnist'], str(root / 'ref'), plot_only=True)
  rows = open(out).read().strip().splitlines()
  assert len(rows) == 6
  assert rows[2].startswith('| mnist |') and rows[4].startswith('| cifar10 |')
  assert '| 12.30% (' in rows[5]   # with its 95 % interval
  with pytest.raises(FileNotFoundError, match='reference_fashion_mnist.json'):
    spec.fashion_mnist = dict(spec.mnist)
    reference.run(spec, ['fashion_mnist'], str(root / 'ref'), plot_only=True)


def test_reference_table_uses_a_runs_own_evaluation_under_the_same_attack(
    smoke_models, mnist_dir, monkeypatch):
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  # A robust run whose final evaluation is the table's attack (smoke: PGD-3,
  # 2 restarts, step 2.5ε/3) on 30 robust and all 10 000 clean test images.
  c = configlib.load(os.path.join(REPO, 'configs', 'mnist_linf.py:smoke'))
  c.data.data_dir = mnist_dir
  c.model.width = 0.25
  c.progress_bar, c.tensorboard = False, False
  c.num_eval_examples, c.num_robust_eval_examples = 0, 30
  wd = str(root / 'robust_own_eval')
  own = train.train_and_evaluate(c, wd)
  calls = _record_evaluations(monkeypatch)
  spec = _spec({**dirs, 'robust_linf': wd})
  reference.run(spec, ['mnist'], str(root / 'ref_own'), plot_only=False)
  assert calls == [(dirs['standard'], 3)]   # the robust run is not evaluated again
  _, rob = json.load(open(os.path.join(root, 'ref_own', 'reference_mnist.json')))['rows']
  assert rob['workdir'] == wd and rob['eval_commit'] == own['commit']
  assert (rob['clean_accuracy'], rob['robust_accuracy']) == (own['clean_accuracy'],
                                                             own['robust_accuracy'])
  assert rob['num_examples'] == 10000 and rob['num_robust_examples'] == 30
  assert rob['checkpoint_step'] == own['train_steps']
  # Another step size is another attack: the checkpoint is evaluated.
  spec.reference_attack.step_scale = 2.0
  reference.run(spec, ['mnist'], str(root / 'ref_own'), plot_only=False)
  assert calls[1:] == [(dirs['standard'], 3), (wd, 3)]


def test_default_reference_spec_uses_the_full_size_mnist_models():
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  spec = specs.load_spec(None, reference.DEFAULT_SPEC)
  figures_spec = specs.load_spec(None)
  assert spec.mnist.standard == 'runs/sweeps/reference_mnist_linf_cpu/attack.eps=0'
  assert spec.mnist.robust_linf == 'runs/sweeps/reference_mnist_linf_cpu_pgd7/attack.eps=0.3'
  assert spec.mnist.robust_l2 == figures_spec.mnist.robust_l2
  assert spec.cifar10.to_dict() == figures_spec.cifar10.to_dict()
  assert specs.spec_datasets(spec) == ['mnist', 'fashion_mnist', 'cifar10',
                                       'restricted_imagenet']


def test_every_model_of_the_default_specs_is_a_run_of_a_committed_sweep(monkeypatch):
  import glob  # pylint: disable=g-import-not-at-top
  from launch import grids as sweep_lib  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(REPO)  # sweeps name their base config relative to the repository
  workdirs = set()
  for path in glob.glob(os.path.join(REPO, 'configs', 'sweeps', '*.py')):
    s = sweep_lib.load_sweep(path)
    for run in sweep_lib.expand(s, 'runs/sweeps'):
      workdirs.add(run.workdir)
      if 'reference_' in s.name and 'cpu' in s.name:
        sweep_lib.run_config(s, run)  # every override names a real field
  for spec in (specs.load_spec(None), specs.load_spec(None, reference.DEFAULT_SPEC)):
    for dataset in specs.spec_datasets(spec):
      for role in (*specs.ROLES, 'independent'):
        wd = spec[dataset].get(role, '')
        assert not wd or wd in workdirs, (dataset, role, wd)


def test_sanity_command_attacks_a_run_over_an_eps_grid(smoke_models):
  from tradeoff.figures import sanity  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  json_path, png = sanity.run(dirs['robust_linf'], str(root / 'sanity'), str(root / 'sanity'),
                              plot_only=False, num_examples=40, apgd_steps=5,
                              square_queries=20)
  res = json.load(open(json_path))
  eps = [g['eps'] for g in res['grid']]
  assert eps == pytest.approx([0.075, 0.15, 0.3, 0.6, 1.0])   # up to the whole [0, 1] box
  assert all(0 <= g['white_box'] <= g['clean_accuracy'] and 0 <= g['black_box'] <= 1
             for g in res['grid'])
  # The white box is AutoAttack's gradient stages: APGD-CE, then APGD-T on what it left.
  white = res['grid'][0]['white_box_attack']
  assert res['white_box'] == 'autoattack_fast' and white['name'] == 'autoattack_fast_custom'
  assert [st['name'] for st in white['stages']] == ['apgd_ce', 'apgd_t9']
  assert all(st['num_steps'] == 5 for st in white['stages'])
  for g in res['grid']:
    ce, t = g['white_box_by_stage']
    assert (ce['attack'], t['attack']) == ('apgd_ce', 'apgd_t9')
    assert t['robust_accuracy'] == g['white_box'] <= ce['robust_accuracy']
  assert res['grid'][0]['black_box_attack']['name'] == 'square'
  assert set(res['checks']) >= {'monotone_in_eps', 'reaches_zero_at_largest_eps',
                                'possibly_gradient_masked', 'passed'}
  assert res['checks']['reaches_zero_at_largest_eps']   # the whole box: nothing is robust
  assert res['num_examples'] == 40 and res['commit'] and res['device']
  assert os.path.getsize(png) > 10_000
  # APGD-CE alone, on request; an unknown white box names the valid ones.
  ce = sanity.white_box_attack('apgd_ce', 'linf', 0.3, 5, (0.0, 1.0)).describe()
  assert (ce['name'], ce['num_steps'], ce['eps']) == ('apgd_ce', 5, 0.3)
  with pytest.raises(errors.UserError, match="'pgd'.*autoattack_fast, apgd_ce"):
    sanity.run(dirs['robust_linf'], str(root / 'x'), str(root / 'x'), plot_only=False,
               white_box='pgd')


def test_reference_table_adds_autoattack_beside_pgd_and_reuses_a_bench_record(smoke_models,
                                                                            monkeypatch):
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff.bench import attacks as bench_attacks  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  settings = configlib.autoattack_config()
  settings.apgd_steps, settings.fab_steps, settings.square_queries, settings.targets = 4, 4, 10, 2
  # The cost benchmark's AutoAttack evaluation of the robust model ...
  cost = bench_attacks.attack_cost(dirs['robust_linf'], num_examples=30, settings=settings,
                                   pgd=ml_collections.ConfigDict(
                                       {'num_steps': 3, 'restarts': 2, 'step_scale': 2.5}))
  aa = cost['evaluations']['autoattack']
  assert [s['attack'] for s in aa['robust_accuracy_by_stage']] == [
      'apgd_ce', 'apgd_t2', 'fab_t2', 'square']
  assert cost['autoattack_over_pgd'] == aa['robust_time_s'] / cost['pgd_time_s'] > 0
  assert 'AutoAttack, custom settings (APGD-CE-4, APGD-T2-4' in bench_attacks.format_attack_cost(cost)
  record = str(root / 'bench_attacks.json')
  json.dump(cost, open(record, 'w'))
  # ... is used by the table, which evaluates only the standard model itself.
  spec = _spec(dirs)
  spec.reference_autoattack = {'name': 'autoattack', 'num_examples': 30,
                               'settings': settings.to_dict(), 'records': [record]}
  calls = _record_evaluations(monkeypatch)
  out, = reference.run(spec, ['mnist'], str(root / 'ref_aa'), plot_only=False)
  assert sorted(c for c in calls if c[1] == 'autoattack') == [(dirs['standard'], 'autoattack')]
  res = json.load(open(os.path.join(root, 'ref_aa', 'reference_mnist.json')))
  std, rob = res['rows']
  assert rob['autoattack']['robust_accuracy'] == aa['robust_accuracy']
  # each row names the exact model it evaluated: the digest of its trained variables
  for r, role in ((std, 'standard'), (rob, 'robust_linf')):
    trained = json.load(open(os.path.join(dirs[role], 'results.json')))['variables_sha']
    assert r['variables_sha'] == trained
  assert std['autoattack']['variables_sha'] == std['variables_sha']
  for r in (std, rob):
    assert r['autoattack']['spec']['settings'] == settings.to_dict()
    assert r['autoattack']['num_robust_examples'] == 30
    assert 0 <= r['autoattack']['robust_accuracy'] <= r['autoattack']['robust_subset_clean_accuracy']
  rows = open(out).read().strip().splitlines()
  from tradeoff import stats  # pylint: disable=g-import-not-at-top
  drop = 100 * (rob['robust_accuracy'] - rob['autoattack']['robust_accuracy'])
  # shrunk settings: the table does not call it AutoAttack standard
  lo, hi = stats.accuracy_interval(rob['autoattack']['robust_accuracy'], 30)
  assert (f"| {rob['autoattack']['robust_accuracy']:.2%} ({100 * lo:.1f}–{100 * hi:.1f}) | "
          f"{drop:.1f} | AutoAttack, custom "
          "settings (APGD-CE-4, APGD-T2-4, FAB-T2-4, Square-10), first 30 |") in rows[3]
  # Kept on the next run; evaluated again when its settings change.
  calls.clear()
  reference.run(spec, ['mnist'], str(root / 'ref_aa'), plot_only=False)
  assert not calls
  spec.reference_autoattack.settings.square_queries = 12
  spec.reference_autoattack.records = []
  reference.run(spec, ['mnist'], str(root / 'ref_aa'), plot_only=False)
  assert calls == [(dirs['standard'], 'autoattack'), (dirs['robust_linf'], 'autoattack')]

  # A run killed during a row's AutoAttack evaluation has saved that row's PGD
  # half, which the next run keeps.
  spec.reference_attack.num_steps = 4
  spec.reference_autoattack.settings.square_queries = 14
  recording = reference.evaluation.evaluate_checkpoint
  def killed_in_autoattack(config, workdir):
    if config.eval_attack.name == 'autoattack':
      raise KeyboardInterrupt
    return recording(config, workdir)
  monkeypatch.setattr(reference.evaluation, 'evaluate_checkpoint', killed_in_autoattack)
  calls.clear()
  with pytest.raises(KeyboardInterrupt):
    reference.run(spec, ['mnist'], str(root / 'ref_aa'), plot_only=False)
  assert calls == [(dirs['standard'], 4)]
  std, rob = json.load(open(os.path.join(root, 'ref_aa', 'reference_mnist.json')))['rows']
  assert std['eval_attack']['num_steps'] == 4 and 'autoattack' not in std
  assert rob['eval_attack']['num_steps'] == 3   # the earlier row, not reached yet
  monkeypatch.setattr(reference.evaluation, 'evaluate_checkpoint', recording)
  calls.clear()
  reference.run(spec, ['mnist'], str(root / 'ref_aa'), plot_only=False)
  assert calls == [(dirs['standard'], 'autoattack'), (dirs['robust_linf'], 4),
                   (dirs['robust_linf'], 'autoattack')]


def test_a_killed_reference_run_keeps_the_rows_it_finished(smoke_models, monkeypatch):
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  spec = _spec(dirs)
  spec.reference_attack.num_steps = 5        # an attack no earlier test evaluated
  calls = []
  real_evaluate = reference.evaluation.evaluate_checkpoint
  def evaluate_then_die(config, workdir):
    calls.append(workdir)
    if len(calls) == 2:
      raise KeyboardInterrupt   # killed while evaluating the second model
    return real_evaluate(config, workdir)
  monkeypatch.setattr(reference.evaluation, 'evaluate_checkpoint', evaluate_then_die)
  with pytest.raises(KeyboardInterrupt):
    reference.run(spec, ['mnist'], str(root / 'ref_killed'), plot_only=False)
  kept = json.load(open(os.path.join(root, 'ref_killed', 'reference_mnist.json')))['rows']
  assert [r['role'] for r in kept] == ['standard']
  calls.clear()
  monkeypatch.setattr(reference.evaluation, 'evaluate_checkpoint',
                      lambda config, workdir: calls.append(workdir) or real_evaluate(config,
                                                                                       workdir))
  reference.run(spec, ['mnist'], str(root / 'ref_killed'), plot_only=False)
  assert calls == [dirs['robust_linf']]      # the standard model is not evaluated again
  rows = json.load(open(os.path.join(root, 'ref_killed', 'reference_mnist.json')))['rows']
  assert rows[0] == kept[0] and [r['role'] for r in rows] == ['standard', 'robust_linf']
  # A row of a model the spec does not name (here: an ℓ2 row from an earlier
  # file) stays in the file; nothing is evaluated again.
  path = os.path.join(root, 'ref_killed', 'reference_mnist.json')
  record = json.load(open(path))
  record['rows'].append(dict(rows[1], role='robust_l2', threat_norm='l2'))
  json.dump(record, open(path, 'w'))
  calls.clear()
  reference.run(spec, ['mnist'], str(root / 'ref_killed'), plot_only=False)
  assert calls == []
  again = json.load(open(path))['rows']
  assert [(r['role'], r['threat_norm']) for r in again] == [
      ('standard', 'linf'), ('robust_linf', 'linf'), ('robust_l2', 'l2')]


def test_an_unfinished_autoattack_evaluation_is_recorded_as_a_bound(smoke_models, monkeypatch):
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  root, dirs = smoke_models
  settings = configlib.autoattack_config()
  settings.apgd_steps, settings.fab_steps, settings.square_queries, settings.targets = 4, 4, 16, 2
  spec = _spec(dirs)
  spec.reference_autoattack = {'name': 'autoattack', 'num_examples': 30,
                               'settings': settings.to_dict()}
  out_dir = str(root / 'ref_unfinished')
  path = os.path.join(out_dir, 'reference_mnist.json')
  real_save = accuracy.CascadeProgress.save
  def save_then_die(self, robust, by_stage, stage, part, *rest):
    real_save(self, robust, by_stage, stage, part, *rest)
    if (stage, part) == (1, 0):    # killed once APGD-CE has finished
      raise KeyboardInterrupt
  monkeypatch.setattr(accuracy.CascadeProgress, 'save', save_then_die)
  with pytest.raises(KeyboardInterrupt):
    reference.run(spec, ['mnist'], out_dir, plot_only=False)
  monkeypatch.setattr(accuracy.CascadeProgress, 'save', real_save)

  reference.run(spec, ['mnist'], out_dir, plot_only=False, record_unfinished_only=True)
  std, = json.load(open(path))['rows']
  u = std['autoattack_unfinished']
  assert 'autoattack' not in std
  assert [s['attack'] for s in u['finished_stages']] == ['apgd_ce']
  assert u['stages'] == ['apgd_ce', 'apgd_t2', 'fab_t2', 'square']
  assert (u['stopped_in_stage'], u['targets_done'], u['num_robust_examples']) == (1, 0, 30)
  assert u['robust_accuracy_so_far'] == u['finished_stages'][0]['robust_accuracy']
  assert u['variables_sha'] == std['variables_sha']
  table = open(os.path.join(out_dir, 'reference_table.md')).read()
  drop = 100 * (std['robust_accuracy'] - u['robust_accuracy_so_far'])
  assert (f"≤ {u['robust_accuracy_so_far']:.2%} (1 of 4 stages) | ≥ {drop:.1f} |" in table
          and 'stopped in apgd_t2' in table)

  # The next run resumes the evaluation at APGD-T; the finished row is a plain
  # AutoAttack row again, within the bound.
  reference.run(spec, ['mnist'], out_dir, plot_only=False)
  std = json.load(open(path))['rows'][0]
  assert 'autoattack_unfinished' not in std
  assert std['autoattack']['resumed']['stage'] == 2
  assert std['autoattack']['robust_accuracy_by_stage'][0] == u['finished_stages'][0]
  assert std['autoattack']['robust_accuracy'] <= u['robust_accuracy_so_far']
  # Nothing unfinished is left to record.
  reference.run(spec, ['mnist'], out_dir, plot_only=False, record_unfinished_only=True)
  assert all('autoattack_unfinished' not in r for r in json.load(open(path))['rows'])
