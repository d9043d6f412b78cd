"""Experiment plumbing and figure drawing (no long training)."""
import os

import pytest

from tradeoff import train
from tradeoff import workdir as workdir_lib
from tradeoff import writers
from tiny_configs import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_metrics_go_to_jsonl_and_to_a_tensorboard_event_file_tensorboard_reads(tmp_path):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=g-import-not-at-top
  w = writers.MetricWriter(str(tmp_path))
  w.write(2, {'train/loss': 1.5, 'train/accuracy': 0.25})
  w.write(4, {'train/loss': 0.5, 'train/accuracy': float('nan')})
  w.close()
  assert [r['step'] for r in writers.read_metrics(str(tmp_path))] == [2, 4]
  acc = event_accumulator.EventAccumulator(str(tmp_path / 'tensorboard'))
  acc.Reload()
  assert sorted(acc.Tags()['scalars']) == ['train/accuracy', 'train/loss']
  assert [(e.step, e.value) for e in acc.Scalars('train/loss')] == [(2, 1.5), (4, 0.5)]
  assert [(e.step, e.value) for e in acc.Scalars('train/accuracy')] == [(2, 0.25)]  # NaN kept out


def test_train_or_load_reuses_a_finished_run_and_refuses_a_changed_one(tmp_path):
  c = tiny_config()
  first = train.train_or_load(c, str(tmp_path))
  lines = len(writers.read_metrics(str(tmp_path)))
  mtime = os.path.getmtime(tmp_path / 'results.json')
  c.progress_bar = True  # a RESUMABLE_CHANGES field: still the same run
  again = train.train_or_load(c, str(tmp_path))
  assert again == first
  assert os.path.getmtime(tmp_path / 'results.json') == mtime
  assert len(writers.read_metrics(str(tmp_path))) == lines
  c.attack.eps = 0.2
  assert workdir_lib.finished_results(c, str(tmp_path)) is None
  with pytest.raises(ValueError, match='different config'):
    train.train_or_load(c, str(tmp_path))


def test_robust_accuracy_on_a_subset_clean_accuracy_on_all(tmp_path):
  from tradeoff import evaluation  # pylint: disable=g-import-not-at-top
  c = tiny_config()
  c.num_robust_eval_examples = 32
  results = train.train_and_evaluate(c, str(tmp_path))
  assert results['num_examples'] == 64 and results['num_robust_examples'] == 32
  assert 0 <= results['robust_accuracy'] <= results['robust_subset_clean_accuracy'] <= 1
  again = evaluation.evaluate_checkpoint(c, str(tmp_path))
  for k in ('clean_accuracy', 'robust_accuracy', 'num_examples', 'num_robust_examples'):
    assert again[k] == results[k], k
  c2 = tiny_config()  # attacking everything gives the same clean accuracy
  full = evaluation.evaluate_checkpoint(c2, str(tmp_path))
  assert full['clean_accuracy'] == results['clean_accuracy'] and full['num_robust_examples'] == 64


def test_theory_figures_redraw_from_the_committed_result_files(tmp_path):
  from tradeoff.figures import theory  # pylint: disable=g-import-not-at-top
  results_dir = os.path.join(REPO, 'figures', 'results')
  if not os.path.exists(os.path.join(results_dir, 'theory_svm.json')):
    pytest.skip('theory result files not generated in this checkout')
  paths = theory.run(str(tmp_path / 'runs'), results_dir, str(tmp_path), plot_only=True)
  assert [os.path.basename(p) for p in paths] == [
      'theory_svm.png', 'theory_bound.png', 'theory_gaussian.png']
  assert all(os.path.getsize(p) > 20_000 for p in paths)
  assert not os.path.exists(tmp_path / 'runs')  # nothing was trained


def test_runs_saved_before_a_field_was_added_still_resume_and_count_as_finished(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  c = tiny_config()
  first = train.train_or_load(c, str(tmp_path))
  for name in ('config.json', 'results.json'):  # as written before keep_features existed
    path = tmp_path / name
    record = json.load(open(path))
    cfg = record['config'] if name == 'results.json' else record
    del cfg['model']['keep_features']
    json.dump(record, open(path, 'w'))
  assert workdir_lib.finished_results(c, str(tmp_path))['clean_accuracy'] == first['clean_accuracy']
  workdir_lib.prepare(c, str(tmp_path))  # no "different config" error
  c.model.keep_features = (0, 1)
  assert workdir_lib.finished_results(c, str(tmp_path)) is None


def test_fmt_eps_writes_cifar_radii_as_multiples_of_1_over_255():
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  assert common.fmt_eps(4 / 255) == '4/255' and common.fmt_eps(0.0156863) == '4/255'
  assert common.fmt_eps(8 / 255) == '8/255'
  # short decimals stay decimals, even where they are multiples of 1/255 (0.2 = 51/255)
  assert [common.fmt_eps(e) for e in (0, 0.2, 0.3, 0.314, 1.5)] == ['0', '0.2', '0.3', '0.314',
                                                                   '1.5']
  assert common.fmt_eps(0.0123457) == '0.0123457'   # long, but not a multiple of 1/255


def test_docs_tables_are_generated_from_their_result_files(tmp_path, monkeypatch):
  from tradeoff.figures import docs  # pylint: disable=g-import-not-at-top
  docs.run(os.path.join(REPO, 'docs'), check=True)  # the committed docs are up to date
  text = open(os.path.join(REPO, 'docs', 'results.md')).read()
  assert text.count('<!-- table: ') >= 10
  # A hand-edited number is caught by --check and undone by a rewrite.
  edited = text.replace('| 0.1 | 86.2 %', '| 0.1 | 99.9 %', 1)
  assert edited != text
  (tmp_path / 'results.md').write_text(edited)
  with pytest.raises(ValueError, match='Generated tables differ'):
    docs.run(str(tmp_path), check=True)
  monkeypatch.chdir(tmp_path)  # marker paths are relative to the repository, not the cwd
  docs.run(str(tmp_path))
  assert (tmp_path / 'results.md').read_text() == text
  (tmp_path / 'results.md').write_text('<!-- table: nope x -->\n<!-- end table -->\n')
  with pytest.raises(ValueError, match="Unknown table generator 'nope'"):
    docs.run(str(tmp_path))


def test_sanity_checks_flag_non_monotone_nonzero_and_masked_grids():
  from tradeoff.figures import sanity  # pylint: disable=g-import-not-at-top
  good = [{'eps': 0.1, 'white_box': 0.8, 'black_box': 0.85},
          {'eps': 0.3, 'white_box': 0.4, 'black_box': 0.4}, {'eps': 1.0, 'white_box': 0.0}]
  assert sanity.checks(good, 100)['passed']
  rising = [dict(good[0]), {'eps': 0.3, 'white_box': 0.9}, good[2]]
  assert not sanity.checks(rising, 100)['monotone_in_eps']
  stuck = [good[0], good[1], {'eps': 1.0, 'white_box': 0.2}]
  assert not sanity.checks(stuck, 100)['reaches_zero_at_largest_eps']
  masked = [{'eps': 0.1, 'white_box': 0.8, 'black_box': 0.3}, good[1], good[2]]
  result = sanity.checks(masked, 100)
  assert result['possibly_gradient_masked'] and result['black_box_beats_white_box_at_eps'] == [0.1]
  assert not result['passed']
  assert sanity.checks([{'eps': 1.0, 'white_box': 0.01}], 100)['reaches_zero_at_largest_eps']


def test_attack_labels_name_the_attack_its_budget_and_every_stage():
  from tradeoff import attacks  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  pgd = attacks.Attack(eps=0.3, num_steps=20, step_size=0.0375, restarts=2).describe()
  assert common.attack_label(pgd) == 'PGD-20 × 2 restarts'
  aa = attacks.autoattack('linf', 0.3, configlib.autoattack_config(), (0.0, 1.0)).describe()
  assert common.attack_label(aa) == ('AutoAttack standard (APGD-CE-100, APGD-T9-100, '
                                     'FAB-T9-100, Square-5000)')
  fast = attacks.autoattack('l2', 1.5, configlib.autoattack_config(), None, fast=True)
  assert common.attack_label(fast.describe()) == 'AutoAttack fast (APGD-CE-100, APGD-T9-100)'


def test_the_reevaluated_sweep_table_pairs_each_cell_before_and_after_and_never_mixes(tmp_path):
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import docs  # pylint: disable=g-import-not-at-top
  pgd = {'name': 'pgd20', 'num_steps': 20, 'restarts': 2, 'norm': 'linf'}
  aa = {'name': 'autoattack_fast', 'norm': 'linf',
        'stages': [{'name': 'apgd_ce', 'num_steps': 100}, {'name': 'apgd_t9', 'num_steps': 100}]}

  def run(eps, n, seed, before, after=None):
    r = {'status': 'finished', 'point': {'eps': eps, 'data.train_size': n, 'seed': seed},
         'train_attack': {'eps': eps}, 'eval_attack': pgd, 'robust_accuracy': before}
    if after is not None:
      r.update(eval_attack=aa, robust_accuracy=after,
               previous_evaluation={'robust_accuracy': before, 'eval_attack': pgd})
    return r

  path = common.write_json(str(tmp_path / 's.json'), {'runs': [
      run(0.0, 100, 0, 0.9), run(0.1, 100, 0, 0.50, 0.47), run(0.1, 100, 1, 0.54, 0.49),
      run(0.3, 100, 0, 0.20, 0.18), run(0.3, 100, 1, 0.22)]})
  table = docs.reevaluated_sweep(path)
  lines = table.splitlines()
  assert lines[0] == ('| ε_train (linf): PGD-20 × 2 restarts → AutoAttack fast (APGD-CE-100, '
                      'APGD-T9-100) | n = 100 |')
  assert lines[2] == '| 0.1 | 52.0 → 48.0 % (-4.0) |'   # the seeds' means
  assert lines[3] == '| 0.3 | – |'                     # one seed not re-evaluated yet
  assert len(lines) == 4                                # ε = 0 has no robust number
  common.write_json(path, {'runs': [run(0.1, 100, 0, 0.5)]})
  with pytest.raises(ValueError, match='no run has been re-evaluated'):
    docs.reevaluated_sweep(path)


def test_the_reevaluated_runs_table_gives_each_run_before_and_after_and_refuses_a_partial_file(
    tmp_path):
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import docs  # pylint: disable=g-import-not-at-top
  pgd = {'name': 'pgd20', 'num_steps': 20, 'restarts': 2, 'norm': 'linf', 'eps': 0.3}
  aa = {'name': 'autoattack_fast', 'norm': 'linf', 'eps': 0.3,
        'stages': [{'name': 'apgd_ce', 'num_steps': 100}, {'name': 'apgd_t9', 'num_steps': 100}]}

  def run(name, point, clean, before, after=None, eval_eps=0.3, status='finished'):
    r = {'name': name, 'status': status, 'point': point, 'clean_accuracy': clean,
         'eval_attack': dict(pgd, eps=eval_eps), 'robust_accuracy': before}
    if after is not None:
      r.update(eval_attack=aa, robust_accuracy=after,
               previous_evaluation={'robust_accuracy': before, 'eval_attack': pgd})
    return r

  runs = [run('a', {'loss.name': 'pgd_at', 'attack.eps': 0.3}, 0.96, 0.647, 0.6),
          run('b', {'loss.name': 'trades', 'loss.beta': 6.0}, 0.94, 0.408, 0.415),
          run('c', {'eps': 0.0, 'data.train_size': 1000}, 0.95, 0.95, eval_eps=0.0),
          run('d', {'eps': 0.3, 'data.labelled_size': 1000, 'data.pseudo_label_from': 'runs/x'},
              0.9, 0.6, 0.5),
          run('e', {'eps': 0.3}, 0.5, 0.1, status='partial')]
  path = common.write_json(str(tmp_path / 's.json'), {'runs': runs})
  assert docs.reevaluated_runs(path).splitlines() == [
      '| run | standard | robust: PGD-20 × 2 restarts | '
      'robust: AutoAttack fast (APGD-CE-100, APGD-T9-100) | change |',
      '|---|---|---|---|---|',
      '| loss.name = pgd_at, attack.eps = 0.3 | 96.0 % | 64.7 % | 60.0 % | -4.7 |',
      '| loss.name = trades, loss.beta = 6 | 94.0 % | 40.8 % | 41.5 % | +0.7 |',
      '| eps = 0, data.train_size = 1000 | 95.0 % | – | – | – |',
      '| eps = 0.3, data.labelled_size = 1000 | 90.0 % | 60.0 % | 50.0 % | -10.0 |']
  common.write_json(path, {'runs': runs[:1] + [run('f', {'eps': 0.1}, 0.9, 0.5)]})
  with pytest.raises(ValueError, match=r"not re-evaluated yet: \['f'\]"):
    docs.reevaluated_runs(path)
  common.write_json(path, {'runs': [run('f', {'eps': 0.1}, 0.9, 0.5)]})
  with pytest.raises(ValueError, match='no run has been re-evaluated'):
    docs.reevaluated_runs(path)


def test_every_relative_link_of_the_readme_and_docs_points_at_a_file():
  import glob  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  broken = []
  for md in [os.path.join(REPO, 'README.md'), *glob.glob(os.path.join(REPO, 'docs', '*.md'))]:
    for target in re.findall(r'\]\(([^)#\s]+)\)', open(md).read()):
      if not re.match(r'[a-z]+:', target) and not os.path.exists(
          os.path.join(os.path.dirname(md), target)):
        broken.append(f'{os.path.relpath(md, REPO)}: {target}')
  assert not broken, broken


def test_the_grid_runs_table_puts_seeds_side_by_side_and_marks_missing_ones(tmp_path):
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import docs  # pylint: disable=g-import-not-at-top
  pgd = {'name': 'pgd20', 'num_steps': 20, 'restarts': 2, 'norm': 'linf'}

  def run(beta, seed, clean, robust, status='finished'):
    return {'status': status, 'point': {'loss.beta': beta, 'seed': seed}, 'eval_attack': pgd,
            'clean_accuracy': clean, 'robust_accuracy': robust}

  path = common.write_json(str(tmp_path / 's.json'), {'runs': [
      run(6.0, 1, 0.9, 0.8), run(6.0, 0, 0.99, 0.02), run(0.5, 0, 0.95, 0.5),
      run(0.5, 1, 0.1, 0.1, status='partial')]})
  assert docs.grid_runs(path).splitlines() == [
      '| loss.beta (robust: PGD-20 × 2 restarts) | seed 0: standard / robust '
      '| seed 1: standard / robust |',
      '|---|---|---|',
      '| 0.5 | 95.0 % / 50.0 % | – |',
      '| 6 | 99.0 % / 2.0 % | 90.0 % / 80.0 % |']


def test_the_accuracy_table_lists_each_threat_standard_model_first_whatever_the_file_order():
  import json  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import tables  # pylint: disable=g-import-not-at-top
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  record = json.load(open(os.path.join(repo, 'figures', 'results', 'reference_mnist.json')))
  assert [(r['threat_norm'], r['role']) for r in record['rows']] == [
      ('linf', 'standard'), ('linf', 'robust_linf'), ('l2', 'standard'), ('l2', 'robust_l2')]
  shuffled = dict(record, rows=[record['rows'][i] for i in (3, 1, 2, 0)])
  for table in (tables.reference_table, tables.autoattack_stages_table):
    assert table([shuffled]) == table([record])
