r"""Standard vs robust models under one strong attack: the accuracy table.

    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist] [--plot_only]

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

Writes figures/results/reference_<dataset>.json and the markdown table
figures/results/reference_table.md (also printed) from every
reference_<dataset>.json of the spec's datasets in the results directory.
"""
from __future__ import annotations

import logging
import os
import time

import jax

from tradeoff import experiment
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common
from tradeoff.figures import specs
from tradeoff.figures import tables

DEFAULT_SPEC = 'configs/figures/reference_models.py'


def strong_eval_config(workdir: str, norm: str, eps: float, atk_spec):
  """The run's config with its evaluation attack replaced by the reference attack."""
  config = workdir_lib.load_config(workdir)
  ea = config.eval_attack
  ea.norm, ea.eps, ea.num_steps = norm, float(eps), int(atk_spec.num_steps)
  ea.restarts, ea.random_start = int(atk_spec.restarts), True
  ea.step_scale, ea.step_size = float(atk_spec.step_scale), None
  config.num_robust_eval_examples = int(atk_spec.num_examples)
  config.num_eval_examples = 0
  return config


def _same_threat_and_attack(row: dict, wd: str, norm: str, eps: float, atk_spec) -> bool:
  """Whether `row` (of an earlier result file) evaluated workdir `wd` at (norm, eps)
  under the reference attack `atk_spec`."""
  atk, steps = row['eval_attack'], int(atk_spec.num_steps)
  return (row['workdir'] == wd and row['threat_norm'] == norm and row['threat_eps'] == eps
          and (atk['num_steps'], atk['restarts'], atk['random_start']) ==
          (steps, int(atk_spec.restarts), True)
          and abs(atk['step_size'] - float(atk_spec.step_scale) * eps / steps) < 1e-9
          and row['num_robust_examples'] == min(int(atk_spec.num_examples),
                                                row['num_examples']))


def _same_evaluation(row: dict, wd: str, train_results: dict, norm: str, eps: float,
                     atk_spec) -> bool:
  """Whether `row` (of an earlier result file) evaluated this trained model this way."""
  return (_same_threat_and_attack(row, wd, norm, eps, atk_spec)
          and row['train_commit'] == train_results['commit']
          and row.get('train_time_s') == train_results.get('train_time_s')
          and row.get('train_steps') == train_results.get('train_steps'))


def _own_evaluation(train_results: dict, wd: str, norm: str, eps: float,
                    atk_spec) -> dict | None:
  """The run's own final evaluation (its results.json), in experiment.evaluate_checkpoint's keys, if
  it used the reference attack at (norm, eps) with clean accuracy on the whole
  test set; None otherwise (the table then evaluates the checkpoint itself)."""
  atk = train_results.get('eval_attack')
  if not atk or train_results.get('robust_accuracy') is None:
    return None
  n = train_results['num_examples']
  as_row = {'workdir': wd, 'threat_norm': atk['norm'], 'threat_eps': atk['eps'],
            'eval_attack': atk, 'num_examples': n,
            'num_robust_examples': train_results.get('num_robust_examples', n)}
  if (not _same_threat_and_attack(as_row, wd, norm, eps, atk_spec)
      or n != train_results['data']['num_test']):
    return None
  return {**{k: train_results[k] for k in ('clean_accuracy', 'robust_accuracy', 'eval_attack',
                                            'num_examples')},
          'num_robust_examples': as_row['num_robust_examples'],
          'wall_time_s': train_results['eval_time_s'],
          'checkpoint_step': train_results['train_steps']}


def _absent_run_row(earlier: list[dict], wd: str, role: str, norm: str, eps: float | None,
                    atk_spec) -> dict:
  """The earlier row of a run whose workdir is not on this machine.

  Its trained model cannot be checked against the row, so the row is kept only
  if it evaluated that workdir in that role under the same attack (at `eps`, or
  at the row's own ε when `eps` is None); otherwise the error names the workdir.
  """
  for r in earlier:
    if r['role'] == role and _same_threat_and_attack(
        r, wd, norm, r['threat_eps'] if eps is None else eps, atk_spec):
      return r
  raise FileNotFoundError(
      f'{os.path.join(wd, "results.json")} does not exist and the result file holds no '
      f'evaluation of it as {role} at {norm} under this attack: train it first (its sweep '
      'is named in the spec file) or point the spec elsewhere.')


def reference_experiment(spec, dataset: str, previous: dict | None = None) -> dict:
  """Evaluates the spec's models of `dataset`; rows of `previous` (an earlier
  result file) that evaluated the same trained model under the same attack
  are kept instead of computed again, as are its rows of models whose workdir
  is not on this machine (checkpoints are not committed)."""
  t0 = time.time()
  commit = common.provenance_record(t0)['commit']
  panel = specs.spec_panel(spec, dataset)
  earlier = [dict(r, eval_commit=r.get('eval_commit', previous['commit']))
             for r in (previous or {}).get('rows', [])]
  rows = []
  for norm in ('linf', 'l2'):
    robust_wd = panel.get(f'robust_{norm}', '')
    if not robust_wd:
      continue
    robust_path = os.path.join(robust_wd, 'results.json')
    if os.path.exists(robust_path):
      eps = float(common.read_json(robust_path)['train_attack']['eps'])
    else:
      eps = _absent_run_row(earlier, robust_wd, f'robust_{norm}', norm, None,
                            spec.reference_attack)['threat_eps']
    for role, wd in (('standard', panel.standard), (f'robust_{norm}', robust_wd)):
      if not os.path.exists(os.path.join(wd, 'results.json')):
        rows.append(_absent_run_row(earlier, wd, role, norm, eps, spec.reference_attack))
        logging.warning('%s %s %s ε=%g: %s is not here; kept its evaluation from the earlier '
                        'result file (commit %s)', dataset, role, norm, eps, wd,
                        rows[-1]['eval_commit'])
        continue
      train_results = common.read_json(os.path.join(wd, 'results.json'))
      same = [r for r in earlier
              if _same_evaluation(r, wd, train_results, norm, eps, spec.reference_attack)]
      if same:
        rows.append(same[0])
        logging.info('%s %s %s ε=%g: kept from the earlier result file (commit %s)', dataset,
                     role, norm, eps, same[0]['eval_commit'])
        continue
      res = _own_evaluation(train_results, wd, norm, eps, spec.reference_attack)
      if res is not None:
        logging.info('%s %s %s ε=%g: %s was evaluated under this attack by its own run; '
                     'using that evaluation', dataset, role, norm, eps, wd)
        eval_commit = train_results['commit']
      else:
        res = experiment.evaluate_checkpoint(strong_eval_config(wd, norm, eps, spec.reference_attack),
                                    wd)
        jax.clear_caches()
        eval_commit = commit
      rows.append({
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
          'eval_commit': eval_commit})
      logging.info('%s %s %s ε=%g: clean %.4f robust %.4f', dataset, role, norm, eps,
                   res['clean_accuracy'], res['robust_accuracy'])
  if not rows:
    raise ValueError(f'{dataset}: the spec names no robust model (robust_linf / robust_l2).')
  return {'experiment': 'reference', 'dataset': dataset, 'spec': spec.to_dict(), 'rows': rows,
          **common.provenance_record(t0)}


def _params(n) -> str:
  return '?' if not n else f'{n / 1e6:.2f} M' if n >= 1e6 else f'{n / 1e3:.0f} k'


def table(results: list[dict]) -> str:
  rows = []
  for res in results:
    for r in res['rows']:
      atk = r['eval_attack']
      copy = ' (approximate copy)' if (r.get('data') or {}).get('approximate_copy') else ''
      model = 'standard' if r['role'] == 'standard' else 'robust'
      rows.append([
          f"{r['dataset']}{copy}", f"{r['threat_norm']} ε = {common.fmt_eps(r['threat_eps'])}",
          f"{model} ({common.fmt_eps(r['train_attack']['eps'])})", _params(r.get('num_params')),
          f"{r['clean_accuracy']:.2%}", f"{r['robust_accuracy']:.2%}",
          f"{atk['name']} × {atk['restarts']} restarts, step {atk['step_size']:.3g}, "
          f"first {r['num_robust_examples']} test images",
          f"{(r['train_time_s'] or 0) / 60:.1f} min", r['train_steps']])
  return tables.markdown(['dataset', 'threat', 'model (train ε)', 'parameters', 'clean acc.',
                          'robust acc.', 'eval attack', 'train time', 'train steps'], rows)


def run(spec, datasets: list[str], results_dir: str, plot_only: bool) -> list[str]:
  spec = specs.load_spec(spec, DEFAULT_SPEC)
  for dataset in datasets:
    path = os.path.join(results_dir, f'reference_{dataset}.json')
    if not plot_only:
      previous = common.read_json(path) if os.path.exists(path) else None
      common.write_json(path, reference_experiment(spec, dataset, previous))
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
  text = table(results)
  with open(out, 'w') as f:
    f.write(text)
  print(text)
  return [out]
