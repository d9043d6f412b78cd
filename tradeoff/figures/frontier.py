r"""The robustness–accuracy frontier: PGD adversarial training over its training ε
against TRADES over β (Zhang et al. 2019), one point per trained model.

    python -m launch.sweep --sweep=configs/sweeps/frontier_mnist.py
    python -m tradeoff.figures reevaluate --results=figures/results/frontier_mnist.json
    python -m tradeoff.figures frontier \
        --results=figures/results/frontier_mnist_autoattack_fast.json

Each finished run of the collected file(s) is a point (robust accuracy, standard
accuracy) under the run's evaluation attack (every run of a frontier must share
it: one norm and ε, one attack). A method is the run's `loss.name`, its knob
the training ε for `pgd_at` / `standard` and β for `trades`. A method's Pareto
front is its points that no other point of it beats on both axes. Where two
fronts cover the same robust accuracies they are compared by the standard
accuracy each can keep at robust accuracy ≥ r (the best of its points there,
no interpolation), over a grid of r. On the §2 synthetic distribution the
Theorem 2.1 bound, robust ≤ p/(1−p)·(1 − standard), is drawn with the points.
Writes figures/results/pareto_<name>.json and figures/pareto_<name>.png, <name> the
first collected file's name.
"""
from __future__ import annotations

import collections
import time

import numpy as np

from tradeoff import errors
from tradeoff import theory
from tradeoff.figures import common

# Each method's knob, read off a collected run (its resolved training attack, its config).
KNOB = {'pgd_at': ('training ε', lambda run: run['train_attack']['eps']),
        'standard': ('training ε', lambda run: 0.0),
        'trades': ('β', lambda run: run['config']['loss']['beta'])}


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
  """The (robust, clean) points no other point beats on both axes (ties kept
  once), by robust accuracy ascending."""
  front = []
  for r, c in sorted(set(points), key=lambda p: (-p[0], -p[1])):
    if not front or c > front[-1][1]:
      front.append((r, c))
  return front[::-1]


def clean_at_robust(front: list[tuple[float, float]], r: float) -> float | None:
  """The best standard accuracy among front points with robust accuracy ≥ r."""
  kept = [c for rob, c in front if rob >= r - 1e-12]
  return max(kept) if kept else None


def compare(front_a, front_b, num: int = 21) -> dict:
  """Standard accuracy of front a minus front b at robust accuracy levels both reach."""
  lo = max(min(r for r, _ in front_a), min(r for r, _ in front_b))
  hi = min(max(r for r, _ in front_a), max(r for r, _ in front_b))
  if hi < lo:
    return {'overlap': None}
  levels = np.linspace(lo, hi, num)
  diff = [clean_at_robust(front_a, r) - clean_at_robust(front_b, r) for r in levels]
  i = int(np.argmax(np.abs(diff)))
  return {'overlap': [float(lo), float(hi)], 'levels': levels.tolist(), 'difference': diff,
          'mean_difference': float(np.mean(diff)), 'largest_difference': float(diff[i]),
          'at_robust_accuracy': float(levels[i])}


def frontier_experiment(results: list[str]) -> dict:
  t0 = time.time()
  runs = []
  for path in results:
    runs += [r for r in common.read_json(path)['runs'] if r.get('status') == 'finished']
  if not runs:
    raise errors.UserError(f'{", ".join(results)}: no finished runs; run the sweep first.')
  common.check_one_eval_attack(runs, 'a frontier')
  points = collections.defaultdict(list)
  for r in runs:
    method = r['config']['loss']['name']
    if method not in KNOB:
      raise errors.UserError(f"{r['workdir']}: loss {method!r} has no frontier knob; "
                             f'valid choices: {", ".join(KNOB)}.')
    if method == 'standard':   # the ε = 0 end of adversarial training
      method = 'pgd_at'
    knob_name, knob = KNOB[method]
    points[method].append({'name': r['name'], 'workdir': r['workdir'], 'knob': knob_name,
                           'value': float(knob(r)),
                           'clean_accuracy': r['clean_accuracy'],
                           'robust_accuracy': r['robust_accuracy'],
                           'train_commit': r.get('commit')})
  fronts = {m: pareto_front([(p['robust_accuracy'], p['clean_accuracy']) for p in pts])
            for m, pts in points.items()}
  comparisons = {}
  if 'trades' in fronts and 'pgd_at' in fronts:
    comparisons['trades_minus_pgd_at'] = compare(fronts['trades'], fronts['pgd_at'])
  first = runs[0]
  data = first['config']['data']
  out = {'experiment': 'frontier', 'results': list(results), 'dataset': data['name'],
         'eval_attack': first['eval_attack'],
         'num_robust_examples': first.get('num_robust_examples'),
         'points': dict(points), 'fronts': fronts, 'comparisons': comparisons}
  if data['name'] == 'synthetic':
    p = float(data['synthetic']['p'])
    out['theorem_2_1'] = {'p': p, 'max_excess_over_bound': max(
        q['robust_accuracy'] - float(theory.robust_accuracy_bound(q['clean_accuracy'], p))
        for pts in points.values() for q in pts)}
  return dict(out, **common.provenance_record(t0))


def plot(res: dict, path: str) -> str:
  fig, ax = common.subplots(figsize=(6, 4.5))
  for method, pts in sorted(res['points'].items()):
    xs = [q['robust_accuracy'] for q in pts]
    ys = [q['clean_accuracy'] for q in pts]
    sc = ax.scatter(xs, ys, s=18, label=f"{method} (over {pts[0]['knob']})")
    for q in pts:
      ax.annotate(f"{q['value']:g}", (q['robust_accuracy'], q['clean_accuracy']), fontsize=6,
                  xytext=(3, 2), textcoords='offset points')
    front = res['fronts'][method]
    ax.plot([r for r, _ in front], [c for _, c in front], '-', color=sc.get_facecolor()[0],
            lw=1)
  if 'theorem_2_1' in res:
    p = res['theorem_2_1']['p']
    std = np.linspace(0.5, 1.0, 200)
    ax.plot(np.minimum(theory.robust_accuracy_bound(std, p), std), std, 'k--', lw=1,
            label=f'Theorem 2.1: robust ≤ p/(1−p)·(1 − standard), p = {p:g}')
  atk = res['eval_attack']
  ax.set_xlabel(f"robust accuracy ({common.attack_label(atk)}, {atk['norm']} "
                f"ε = {common.fmt_eps(atk['eps'])})")
  ax.set_ylabel('standard accuracy')
  ax.set_title(f"{res['dataset']}: standard vs robust accuracy, one point per model",
               fontsize=9)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  return common.save_figure(fig, path)


def run(results: list[str], results_dir: str, figures_dir: str, plot_only: bool) -> list[str]:
  return common.experiment_and_figure(
      f'pareto_{common.file_stem(results[0])}', results_dir, figures_dir, plot_only,
      lambda: frontier_experiment(results), plot)
