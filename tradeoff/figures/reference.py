r"""Standard vs robust models under one strong attack: the accuracy table.

    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist] [--plot_only]
    python -m tradeoff.figures reference --record_unfinished   # after a killed run

For every dataset of the spec (default configs/figures/reference_models.py:
the models of Figures 2-4 from configs/figures/robust_models.py, with
larger MNIST models) and every robust model it names (robust_linf, robust_l2), the
standard model and that robust model are re-evaluated from their checkpoints
under the same attack: the robust model's training norm and ε, PGD with
`reference_attack.num_steps` steps of step_scale·ε/num_steps and
`reference_attack.restarts` random restarts, on the first
`reference_attack.num_examples` test images (clean accuracy on all of them).
A sweep's standard run is evaluated at its own ε = 0 only, so this is where
its robust accuracy comes from. A run whose own final evaluation already used
that attack at that norm and ε (clean accuracy on the whole test set) is not
evaluated again: its results.json gives the row. An evaluation already in the
dataset's result file (same workdir, same trained run, same attack) is kept,
not repeated; each row records the commit it was evaluated at (`eval_commit`). Checkpoints are not
committed, so a model whose workdir is not on this machine keeps its row from
the result file if that row used the same attack (a warning says so), and is
an error naming the workdir otherwise.

Every row is also evaluated under AutoAttack (`reference_autoattack`: the
standard version by default, on the first `num_examples` test images) at the
same norm and ε, and the table shows both robust accuracies and the drop. That
evaluation is kept the same way (same trained model, same AutoAttack settings)
and is absent ('–') for a row whose workdir is not here and whose earlier row
has none.

The result file is rewritten after every row, so a killed run keeps the rows it
finished and the next run starts from them. An AutoAttack evaluation keeps its
own progress file; `--record_unfinished` writes where each unfinished one
stands into the result file (`autoattack_unfinished`: the finished stages and
the robust accuracy so far, an upper bound) without evaluating anything, and
the table shows it as "≤ x % (k of 4 stages)".

Writes figures/results/reference_<dataset>.json and the markdown table
figures/results/reference_table.md (also printed) from every
reference_<dataset>.json of the spec's datasets in the results directory.
"""
from __future__ import annotations

import logging
import os
import time

import jax

from tradeoff import evaluation
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common
from tradeoff.figures import evaluations
from tradeoff.figures import specs
from tradeoff.figures import tables

DEFAULT_SPEC = 'configs/figures/reference_models.py'


def _with_autoattack(row: dict, aa_spec) -> dict:
  """`row` with its AutoAttack evaluation: kept if the row has one under these
  settings, else computed from the checkpoint (if it is here)."""
  if not aa_spec or not aa_spec.name:
    return row
  row = {k: v for k, v in row.items() if k != 'autoattack_unfinished'}
  want = _autoattack_want(aa_spec)
  have = row.get('autoattack')
  if have and have['spec'] == want:
    return row
  wd = row['workdir']
  res = _recorded_autoattack(row, want, aa_spec.get('records', ()))
  if res is None:
    if not workdir_lib.exists(workdir_lib.results_path(wd)):
      return {k: v for k, v in row.items() if k != 'autoattack'}
    res = evaluation.evaluate_checkpoint(
        evaluation.autoattack_config(wd, row['threat_norm'], row['threat_eps'], aa_spec), wd)
    jax.clear_caches()
  logging.info('%s %s %s ε=%g: AutoAttack (%s) %.4f', row['dataset'], row['role'],
               row['threat_norm'], row['threat_eps'], want['name'], res['robust_accuracy'])
  return dict(row, autoattack={
      'spec': want, 'robust_accuracy': res['robust_accuracy'],
      'robust_accuracy_by_stage': res['robust_accuracy_by_stage'],
      'num_robust_examples': res['num_robust_examples'],
      'robust_subset_clean_accuracy': res.get('robust_subset_clean_accuracy'),
      'eval_attack': res['eval_attack'], 'eval_time_s': res['wall_time_s'],
      'checkpoint_step': res['checkpoint_step'], 'eval_commit': res['commit'],
      'host': res['host'], **_variables_sha(res),
      **({'resumed': res['resumed']} if 'resumed' in res else {})})


def _autoattack_want(aa_spec) -> dict:
  return {'name': str(aa_spec.name), 'num_examples': int(aa_spec.num_examples),
          'settings': aa_spec.settings.to_dict()}


def unfinished_autoattack(row: dict, aa_spec) -> dict | None:
  """Where the row's AutoAttack evaluation stopped, from its progress file
  (None if the row has a finished one, or no progress of this model under these
  settings is on this machine). The robust accuracy so far is an upper bound on
  the finished evaluation's: a point an attack has broken stays broken."""
  if not aa_spec or not aa_spec.name or row.get('autoattack'):
    return None
  wd = row['workdir']
  if not workdir_lib.exists(workdir_lib.results_path(wd)):
    return None
  got = evaluation.cascade_progress_of(
      evaluation.autoattack_config(wd, row['threat_norm'], row['threat_eps'], aa_spec), wd)
  jax.clear_caches()
  if got is None:
    return None
  saved = got['saved']
  return {'spec': _autoattack_want(aa_spec),
          # the saved robust mask is a string of '1' (still robust) and '0'
          'robust_accuracy_so_far': saved['robust'].count('1') / len(saved['robust']),
          'finished_stages': saved['by_stage'], 'stages': got['stages'],
          # the stage it stopped in (an index into `stages`) and, for a targeted
          # stage, how many of its targets were done
          'stopped_in_stage': int(saved['stage']), 'targets_done': int(saved['part']),
          'unfinished_stage_time_s': saved['stage_time_s'],
          'num_robust_examples': got['num_robust_examples'], 'eval_attack': got['eval_attack'],
          'checkpoint_step': got['checkpoint_step'], 'variables_sha': got['variables_sha'],
          'progress_file': os.path.relpath(got['path']),
          'recorded_at': common.provenance_record(time.time())['commit']}


def record_unfinished(spec, dataset: str, record: dict) -> dict:
  """`record` (a reference_<dataset>.json) with `autoattack_unfinished` set, from
  the progress files on this machine, on each row whose AutoAttack evaluation
  has not finished (and removed where no progress is found)."""
  rows = []
  for r in record['rows']:
    r = {k: v for k, v in r.items() if k != 'autoattack_unfinished'}
    u = unfinished_autoattack(r, spec.get('reference_autoattack'))
    if u:
      logging.info('%s %s %s: AutoAttack unfinished, robust accuracy so far %.4f after %d of '
                   '%d stages', dataset, r['role'], r['threat_norm'],
                   u['robust_accuracy_so_far'], len(u['finished_stages']), len(u['stages']))
    rows.append(dict(r, autoattack_unfinished=u) if u else r)
  return dict(record, rows=rows)


def _recorded_autoattack(row: dict, want: dict, paths) -> dict | None:
  """An AutoAttack evaluation of the row's trained model with these settings
  from the result files `paths` (`python -m tradeoff.bench --mode=attacks`), if any."""
  for path in paths:
    if not os.path.exists(path):
      continue
    rec = common.read_json(path).get('evaluations', {}).get('autoattack')
    if not rec:
      continue
    ea = rec['config']['eval_attack']
    if (os.path.realpath(rec['workdir']) == os.path.realpath(row['workdir'])
        and rec.get('train_commit') == row['train_commit']
        and rec.get('train_steps') == row.get('train_steps')
        and (ea['name'], ea['norm'], ea['eps']) == (want['name'], row['threat_norm'],
                                                    row['threat_eps'])
        and ea['autoattack'] == want['settings']
        and rec['num_robust_examples'] == want['num_examples']):
      logging.info('%s %s: AutoAttack evaluation taken from %s', row['workdir'], row['role'],
                   path)
      return rec
  return None


def reference_experiment(spec, dataset: str, previous: dict | None = None,
                         save=None) -> dict:
  """Evaluates the spec's models of `dataset`; rows of `previous` (an earlier
  result file) that evaluated the same trained model under the same attack
  are kept instead of computed again, as are its rows of models whose workdir
  is not on this machine (checkpoints are not committed). Rows of `previous`
  that the spec does not name (e.g. `--spec.cifar10.robust_l2=` evaluates the
  ℓ∞ rows only) stay in the record as they were.

  `save(record)`, if given, is called with the record so far (the finished
  rows, then the earlier file's rows not reached yet) after each row's PGD
  evaluation and again after its AutoAttack one, so a killed run keeps what it
  evaluated and the next run starts from it: a row killed during AutoAttack
  keeps its PGD half, and the AutoAttack evaluation resumes from its own
  progress file (`evaluation.cascade_progress`).
  """
  t0 = time.time()
  commit = common.provenance_record(t0)['commit']
  panel = specs.spec_panel(spec, dataset)
  earlier = [dict(r, eval_commit=r.get('eval_commit', previous['commit']))
             for r in (previous or {}).get('rows', [])]
  rows = []

  def with_earlier(current: list[dict]) -> list[dict]:
    done = {(r['role'], r['threat_norm']) for r in current}
    return current + [r for r in earlier if (r['role'], r['threat_norm']) not in done]

  def save_so_far(current: list[dict]) -> None:
    if save:
      save(_record(spec, dataset, with_earlier(current), t0))

  for norm in ('linf', 'l2'):
    robust_wd = panel.get(f'robust_{norm}', '')
    if not robust_wd:
      continue
    robust_path = workdir_lib.results_path(robust_wd)
    if workdir_lib.exists(robust_path):
      eps = float(common.read_json(robust_path)['train_attack']['eps'])
    else:
      eps = evaluations.absent_run_row(earlier, robust_wd, f'robust_{norm}', norm, None,
                                       spec.reference_attack)['threat_eps']
    for role, wd in (('standard', panel.standard), (f'robust_{norm}', robust_wd)):
      row = _pgd_row(spec, dataset, earlier, role, wd, norm, eps, commit)
      save_so_far(rows + [row])
      rows.append(_with_autoattack(row, spec.get('reference_autoattack')))
      save_so_far(rows)
  if not rows:
    raise ValueError(f'{dataset}: the spec names no robust model (robust_linf / robust_l2).')
  return _record(spec, dataset, with_earlier(rows), t0)


def _record(spec, dataset: str, rows: list[dict], t0: float) -> dict:
  return {'experiment': 'reference', 'dataset': dataset, 'spec': spec.to_dict(), 'rows': rows,
          **common.provenance_record(t0)}


def _pgd_row(spec, dataset, earlier, role, wd, norm, eps, commit) -> dict:
  """The row of model `wd` under the reference (PGD) attack: kept, taken from the
  run's own evaluation, or evaluated from its checkpoint."""
  if not workdir_lib.exists(workdir_lib.results_path(wd)):
    row = evaluations.absent_run_row(earlier, wd, role, norm, eps, spec.reference_attack)
    logging.warning('%s %s %s ε=%g: %s is not here; kept its evaluation from the earlier '
                    'result file (commit %s)', dataset, role, norm, eps, wd, row['eval_commit'])
    return row
  train_results = common.read_json(workdir_lib.results_path(wd))
  same = [r for r in earlier
          if evaluations.same_evaluation(r, wd, train_results, norm, eps, spec.reference_attack)]
  if same:
    logging.info('%s %s %s ε=%g: kept from the earlier result file (commit %s)', dataset,
                 role, norm, eps, same[0]['eval_commit'])
    return same[0]
  res = evaluations.own_evaluation(train_results, wd, norm, eps, spec.reference_attack)
  if res is not None:
    logging.info('%s %s %s ε=%g: %s was evaluated under this attack by its own run; '
                 'using that evaluation', dataset, role, norm, eps, wd)
    eval_commit = train_results['commit']
  else:
    res = evaluation.evaluate_checkpoint(
        evaluation.strong_pgd_config(wd, norm, eps, spec.reference_attack), wd)
    jax.clear_caches()
    eval_commit = commit
  logging.info('%s %s %s ε=%g: clean %.4f robust %.4f', dataset, role, norm, eps,
               res['clean_accuracy'], res['robust_accuracy'])
  return {
      'dataset': dataset, 'threat_norm': norm, 'threat_eps': eps, 'role': role,
      'workdir': wd, 'train_attack': train_results['train_attack'],
      'train_time_s': train_results.get('train_time_s'),
      'train_steps': train_results.get('train_steps'),
      'num_params': train_results.get('num_params'),
      'data': train_results.get('data'),
      'clean_accuracy': res['clean_accuracy'], 'robust_accuracy': res['robust_accuracy'],
      'num_examples': res['num_examples'],
      'num_robust_examples': res.get('num_robust_examples', res['num_examples']),
      'eval_attack': res['eval_attack'], 'eval_time_s': res['wall_time_s'],
      'checkpoint_step': res['checkpoint_step'], 'train_commit': train_results['commit'],
      'eval_commit': eval_commit, **_variables_sha(res, train_results)}


def _variables_sha(*records) -> dict:
  """{'variables_sha': digest of the evaluated model} from the first record that
  has it (runs trained before it was recorded have none)."""
  for rec in records:
    if rec.get('variables_sha'):
      return {'variables_sha': rec['variables_sha']}
  return {}


def run(spec, datasets: list[str], results_dir: str, plot_only: bool,
        record_unfinished_only: bool = False) -> list[str]:
  """Evaluates (or with plot_only, only tabulates) the reference models of
  `datasets`. With record_unfinished_only nothing is evaluated: the result
  files' rows record where their unfinished AutoAttack evaluations stand
  (`record_unfinished`), and the table shows those as bounds."""
  spec = specs.load_spec(spec, DEFAULT_SPEC)
  for dataset in datasets:
    path = os.path.join(results_dir, f'reference_{dataset}.json')
    if record_unfinished_only:
      if not os.path.exists(path):
        raise FileNotFoundError(f'{path} does not exist; run without --record_unfinished first.')
      common.write_json(path, record_unfinished(spec, dataset, common.read_json(path)))
    elif not plot_only:
      previous = common.read_json(path) if os.path.exists(path) else None
      common.write_json(path, reference_experiment(
          spec, dataset, previous, save=lambda record, path=path: common.write_json(path, record)))
    elif not os.path.exists(path):
      raise FileNotFoundError(f'{path} does not exist; run without --plot_only first.')
  # The table has a row block for every dataset of the spec with a result file,
  # so datasets evaluated by separate commands (e.g. with different
  # TFDS_DATA_DIR) end up in one table.
  results = []
  for dataset in specs.spec_datasets(spec):
    path = os.path.join(results_dir, f'reference_{dataset}.json')
    if os.path.exists(path):
      results.append(common.read_json(path))
  out = os.path.join(results_dir, 'reference_table.md')
  text = tables.reference_table(results)
  common.write_text(out, text)
  print(text)
  return [out]
