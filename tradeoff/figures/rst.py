r"""Robust self-training against standard and adversarial training on the same
labelled examples (configs/sweeps/rst_*.py).

    python -m tradeoff.figures rst --results=figures/results/rst_mnist_autoattack_fast.json

For each number n of labelled examples in the collected file: standard
training on the n, adversarial training on the n, and robust self-training
(adversarial training on the whole training set, the rest pseudo-labelled by
the standard model) — standard and robust accuracy of each, the gaps to
standard training, and how accurate the pseudo-labels were. Writes
figures/results/compare_<name>.json and figures/compare_<name>.png (<name> the
collected file's).
"""
from __future__ import annotations

import collections
import time

import numpy as np

from tradeoff import errors
from tradeoff.figures import common

METHODS = ('standard', 'adversarial', 'robust self-training')


def _method_and_n(run: dict) -> tuple[str, int]:
  c = run['config']
  if c['data'].get('labelled_size'):
    return 'robust self-training', int(c['data']['labelled_size'])
  adversarial = float(run['train_attack']['eps']) > 0
  return ('adversarial' if adversarial else 'standard'), int(c['data']['train_size'])


def rst_experiment(results: str) -> dict:
  t0 = time.time()
  collected = common.read_json(results)
  runs = [r for r in collected['runs'] if r.get('status') == 'finished']
  if not runs:
    raise errors.UserError(f'{results}: no finished runs; run the sweep first.')
  common.check_one_eval_attack(runs, 'Comparing standard, adversarial and self-training')
  table = collections.defaultdict(dict)
  for r in runs:
    method, n = _method_and_n(r)
    table[n][method] = {'name': r['name'], 'clean_accuracy': r['clean_accuracy'],
                        'robust_accuracy': r['robust_accuracy'],
                        'eval_attack': r['eval_attack'],
                        'pseudo_labels': r['data'].get('pseudo_labels'),
                        'train_commit': r.get('commit'), 'train_time_s': r.get('train_time_s')}
  rows = []
  for n in sorted(table):
    row = {'num_labelled': n, **table[n]}
    std = table[n].get('standard')
    for m in METHODS[1:]:
      if std and m in table[n]:
        row[f'{m} clean gap to standard'] = table[n][m]['clean_accuracy'] - std['clean_accuracy']
    rows.append(row)
  atk = runs[0]['eval_attack']
  return {'experiment': 'rst', 'results': results, 'sweep': collected['sweep']['name'],
          'eval_attack': atk, 'rows': rows, **common.provenance_record(t0)}


def plot(res: dict, path: str) -> str:
  fig, axes = common.subplots(1, 2, figsize=(10, 3.8))
  rows = res['rows']
  x = np.arange(len(rows))
  width = 0.27
  for ax, key, label in ((axes[0], 'clean_accuracy', 'standard accuracy'),
                         (axes[1], 'robust_accuracy', 'robust accuracy')):
    for i, m in enumerate(METHODS):
      vals = [r[m][key] if m in r else np.nan for r in rows]
      ax.bar(x + (i - 1) * width, vals, width, label=m)
    ax.set_xticks(x)
    ax.set_xticklabels([f"n = {r['num_labelled']} labelled" for r in rows])
    ax.set_ylabel(label)
    lo = np.nanmin([r[m][key] for r in rows for m in METHODS if m in r])
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.grid(axis='y', alpha=0.3)
  axes[0].legend(fontsize=7)
  atk = res['eval_attack']
  axes[1].set_title(f"{common.attack_label(atk)}, {atk['norm']} ε = "
                    f"{common.fmt_eps(atk['eps'])}", fontsize=8)
  fig.suptitle(f"{res['sweep']}: robust self-training vs training on the labelled examples",
               fontsize=10)
  return common.save_figure(fig, path)


def run(results: str, results_dir: str, figures_dir: str, plot_only: bool) -> list[str]:
  return common.experiment_and_figure(
      f'compare_{common.file_stem(results)}', results_dir, figures_dir, plot_only,
      lambda: rst_experiment(results), plot)
