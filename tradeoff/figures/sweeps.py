"""Figures 1, 6 and 7 from collected sweep results (launch/sweep.py output).

    python -m tradeoff.figures figure1 --results=figures/results/figure6_mnist_linf.json
    python -m tradeoff.figures figure7 --results=figures/results/figure7_mnist_linf.json

Both read only the collected file; runs it lists as missing are left out and
counted in the figure title.
"""
from __future__ import annotations

import collections
import os
import textwrap

import numpy as np

from tradeoff.figures import common
from tradeoff.figures import tables


def _finished(res: dict) -> list[dict]:
  return [r for r in res['runs'] if r['status'] == 'finished']


def _eps(run: dict) -> float:
  return float(run['config']['eps'])


def _eval_label(res: dict) -> str:
  """The robust panels' attack: e.g. 'PGD-20 × 2 restarts, first 1000 test images'."""
  atks = {(common.attack_label(r['eval_attack']), r.get('num_robust_examples', r['num_examples']))
          for r in _finished(res) if r['eval_attack']['eps'] > 0}
  return '; '.join(f'{a}, first {m} test images' for a, m in sorted(atks)) or 'none'


def size_curves(res: dict) -> dict[float, dict]:
  """{ε: {'n': sizes, 'clean': [[per seed]], 'robust': [[per seed]]}}."""
  by = collections.defaultdict(lambda: collections.defaultdict(list))
  for r in _finished(res):
    n = r['config']['data']['train_size'] or r['data'].get('num_train')
    by[_eps(r)][int(n)].append((r['clean_accuracy'], r['robust_accuracy']))
  out = {}
  for eps, per_n in sorted(by.items()):
    sizes = sorted(per_n)
    out[eps] = {'n': sizes, 'clean': [[c for c, _ in per_n[n]] for n in sizes],
                'robust': [[rb for _, rb in per_n[n]] for n in sizes]}
  return out


def plot_figure1(res: dict, path: str) -> str:
  curves = size_curves(res)
  norm = _finished(res)[0]['config']['norm']
  fig, axes = common.subplots(1, 2, figsize=(12, 4.5), layout='constrained')
  for eps, c in curves.items():
    for ax, key in ((axes[0], 'clean'), (axes[1], 'robust')):
      if key == 'robust' and eps == 0:
        ax.plot([], [])  # keep colours aligned; robustness at ε = 0 is clean accuracy
        continue
      mean = [np.mean(v) for v in c[key]]
      lo = [np.min(v) for v in c[key]]
      hi = [np.max(v) for v in c[key]]
      line, = ax.semilogx(c['n'], mean, 'o-', label=f'ε = {common.fmt_eps(eps)}')
      ax.fill_between(c['n'], lo, hi, color=line.get_color(), alpha=0.2)
  axes[0].set_ylabel('standard test accuracy')
  axes[1].set_ylabel('robust accuracy at own ε')
  axes[1].set_title(textwrap.fill(f'robust: {_eval_label(res)}', 70), fontsize=9)
  for ax in axes:
    ax.set_xlabel('training-set size n')
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  missing = res['num_runs'] - res['num_finished']
  fig.suptitle(f"{res['sweep']['name']}: adversarial training ({norm}) vs training-set size "
               f"(band: min–max over seeds{'; %d runs missing' % missing if missing else ''})",
               fontsize=11)
  return common.save_figure(fig, path)


def eps_curve(res: dict) -> dict:
  """{'eps': sorted ε, 'clean': [[per seed]], 'robust': [[per seed]]} over finished runs."""
  by = collections.defaultdict(list)
  for r in _finished(res):
    by[_eps(r)].append((r['clean_accuracy'], r['robust_accuracy']))
  eps = sorted(by)
  return {'eps': eps, 'clean': [[c for c, _ in by[e]] for e in eps],
          'robust': [[rb for _, rb in by[e]] for e in eps]}


def plot_figure7(res: dict, path: str) -> str:
  c = eps_curve(res)
  norm = _finished(res)[0]['config']['norm']
  fig, ax = common.subplots(1, 1, figsize=(6.5, 4.5))
  for key, style, label in (('clean', 'o-', 'standard accuracy'),
                            ('robust', 's--', f'robust accuracy at own ε ({_eval_label(res)})')):
    idx = [i for i, e in enumerate(c['eps']) if key == 'clean' or e > 0]
    x = [c['eps'][i] for i in idx]
    line, = ax.plot(x, [np.mean(c[key][i]) for i in idx], style, label=label)
    ax.fill_between(x, [np.min(c[key][i]) for i in idx], [np.max(c[key][i]) for i in idx],
                    color=line.get_color(), alpha=0.2)
  ax.set_xlabel(f'training ε ({norm})')
  ax.set_ylabel('test accuracy')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  ax.set_title(f"{res['sweep']['name']}: accuracy vs ε_train (band: min–max over seeds)",
               fontsize=10)
  return common.save_figure(fig, path)


def parse_where(where: list[str] | None) -> dict[str, str]:
  """['data.train_size=60000', 'seed=0'] -> {'data.train_size': '60000', 'seed': '0'}."""
  out = {}
  for cond in where or ():
    key, sep, value = cond.partition('=')
    if not sep or not key:
      raise ValueError(f'--where condition {cond!r} must be KEY=VALUE, e.g. data.train_size=60000.')
    out[key] = value
  return out


def _matches(run: dict, where: dict[str, str]) -> bool:
  """Whether the run's grid point has every KEY=VALUE; float values compare as numbers."""
  point = run.get('point', {})
  for key, value in where.items():
    if key not in point:
      return False
    have = point[key]
    if (float(value) != have) if isinstance(have, float) else (str(have) != value):
      return False
  return True


def table(result_files: list[str], where: dict[str, str] | None = None) -> str:
  """A markdown table of the finished runs in the given collected files whose grid
  point matches every KEY=VALUE of `where`."""
  rows = []
  for path in result_files:
    res = common.read_json(path)
    for r in _finished(res):
      if where and not _matches(r, where):
        continue
      cfg, atk, tr = r['config'], r['eval_attack'], r['train_attack']
      copy = ' (approximate copy)' if r['data'].get('approximate_copy') else ''
      n_rob = r.get('num_robust_examples', r['num_examples'])
      rows.append([
          res['sweep']['name'], f"{cfg['data']['name']}{copy}", atk['norm'],
          common.fmt_eps(tr['eps']), f"{r['clean_accuracy']:.2%}",
          f"{r['robust_accuracy']:.2%} ({common.fmt_eps(atk['eps'])})",
          f"{atk['name']} × {atk['restarts']}, step {atk['step_size']:.3g}, {n_rob} points",
          f"{r['train_time_s'] / 60:.1f} min", r['commit'][:7]])
  return tables.markdown(['sweep', 'dataset', 'norm', 'train ε', 'clean acc.',
                          'robust acc. (eval ε)', 'eval attack', 'train time', 'commit'], rows)


def run(command: str, results: str, figures_dir: str, where=None) -> list[str]:
  if command == 'table':
    files = [f for f in results.split(',') if f]
    out = os.path.join(figures_dir, 'results', 'table.md')
    text = table(files, parse_where(where))
    common.write_text(out, text)
    print(text)
    return [out]
  res = common.read_json(results)
  if not _finished(res):
    raise ValueError(f'{results} lists no finished runs; run the sweep first.')
  name = os.path.splitext(os.path.basename(results))[0]
  plot = {'figure1': plot_figure1, 'figure7': plot_figure7}[command]
  return [plot(res, os.path.join(figures_dir, f'{name}.png'))]
