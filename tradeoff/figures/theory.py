r"""The §2 experiments of Tsipras et al. (2019), trained with the engine.

    python -m tradeoff.figures theory [--workdir=runs/theory] [--plot_only]

Three experiments, each a result file in figures/results/ and a PNG in figures/:

- theory_svm:      Theorem 2.2. Linear hinge-loss models with weight decay (the
                   soft-margin SVM, configs/theory_svm.py) trained at a sweep of
                   ε_train, p = 0.975, d = 1000, η = 4/√d; their learned weights
                   and exact standard / ℓ∞ (ε = 2η) accuracies.
- theory_bound:    Theorem 2.1. (standard, robust) accuracy at ε = 2η of linear
                   classifier families (closed form) and of small MLPs
                   adversarially trained at several ε (configs/theory_mlp.py,
                   PGD-evaluated), against the bound p/(1−p)·δ.
- theory_gaussian: the all-Gaussian variant: closed-form risks as D grows, and
                   the weights of a linear model over standard and adversarial
                   training (configs/theory_gaussian.py).

Training runs live in --workdir (one directory per run); a finished run with
the same config is read back, not retrained.
"""
from __future__ import annotations

import logging
import math
import os
import time

import numpy as np

from tradeoff import theory
from tradeoff.figures import common
from tradeoff.figures import runs as figure_runs

# ε_train of the SVM sweep: 0 (standard SVM), 2η = 0.253, and values across 2p − 1 = 0.95.
SVM_EPS = (0.0, 0.05, 0.1, 0.15, 0.2, 4 / math.sqrt(1000) * 2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8,
           0.9, 0.92, 0.94, 0.96, 1.0, 1.1)
# ε_train of the MLPs, as multiples of η (evaluation is at 2η).
MLP_EPS_FACTORS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def _weight_summary(w: np.ndarray) -> dict:
  v = w[1:]
  return {'w1': float(w[0]), 'weak_mean': float(v.mean()), 'weak_abs_mean': float(np.abs(v).mean()),
          'weak_l2': float(np.linalg.norm(v)), 'w_l2': float(np.linalg.norm(w)),
          'w1_share_of_l2': float(abs(w[0]) / max(np.linalg.norm(w), 1e-30))}


# ---------------------------------------------------------------------------
# Theorem 2.2: the soft-margin SVM, standard and adversarially trained.


def svm_experiment(workdir: str) -> dict:
  t0 = time.time()
  base = figure_runs.load_config('theory_svm.py')
  s = base.data.synthetic
  p, eta, d = float(s.p), float(s.eta), int(s.d)
  eps_test = 2 * eta
  runs = []
  for e in SVM_EPS:
    c = figure_runs.with_eps(base, e, eps_test)
    wd = os.path.join(workdir, f'svm_eps{e:.4f}')
    results = figure_runs.train_run(c, wd)
    (step, (w, b)), = figure_runs.linear_weights(c, wd).items()
    runs.append({
        'eps_train': float(e), 'workdir': wd, 'step': step, 'bias': b,
        **_weight_summary(w),
        'standard_accuracy': theory.linear_accuracy(w, b, p, eta),
        'adversarial_accuracy': theory.linear_accuracy(w, b, p, eta, eps_test),
        'adversarial_accuracy_at_eps_train': theory.linear_accuracy(w, b, p, eta, e),
        'engine': figure_runs.run_record(results),
        'weights': w.tolist() if e in (0.0, SVM_EPS[5]) else None,
    })
    logging.info('SVM eps_train=%.3f: standard %.4f, adversarial(2η) %.4f, w1 share %.3f',
                 e, runs[-1]['standard_accuracy'], runs[-1]['adversarial_accuracy'],
                 runs[-1]['w1_share_of_l2'])
  std = next(r for r in runs if r['eps_train'] == 0.0)
  adv = next(r for r in runs if r['eps_train'] == SVM_EPS[5])
  return {
      'experiment': 'theory_svm', 'theorem': '2.2',
      'params': {'p': p, 'eta': eta, 'd': d, 'eps_test': eps_test, 'norm': 'linf',
                 'eps_threshold_2p_minus_1': 2 * p - 1},
      'accuracy_source': 'closed form (theory.linear_accuracy) of the learned (w, b); '
                         'engine PGD numbers on the stratified test set under "engine"',
      'config': base.to_dict(),
      'summary': {'standard_svm': {'standard_accuracy': std['standard_accuracy'],
                                   'adversarial_accuracy': std['adversarial_accuracy']},
                  'adversarial_svm_eps_2eta': {
                      'standard_accuracy': adv['standard_accuracy'],
                      'adversarial_accuracy': adv['adversarial_accuracy']},
                  'paper': {'standard_svm': '> 99 % standard, < 1 % adversarial',
                            'adversarial_svm': 'standard and adversarial accuracy p = 0.975'}},
      'runs': runs,
      **common.provenance_record(t0),
  }


# ---------------------------------------------------------------------------
# Theorem 2.1: no classifier beats the bound.


def linear_families(p: float, eta: float, d: int, eps: float, seed: int = 0) -> list[dict]:
  """(standard, robust) closed-form accuracies of families of linear classifiers.

  mix:    w = (cos θ, sin θ/√d·1), θ ∈ [0, π/2]: from x_1 alone to f_avg.
  sparse: weak weight on only k of the d features, k ∈ {1, 3, ..., 1000}.
  bias:   mix with a bias b ∈ {±0.25, ±1}.
  random: w_1 ~ U(0, 1), weak weights ~ N(m, s²) with random m, s.
  """
  rng = np.random.default_rng(seed)
  out = []

  def add(family, w, b=0.0, **extra):
    out.append({'family': family, 'standard': theory.linear_accuracy(w, b, p, eta),
                'robust': theory.linear_accuracy(w, b, p, eta, eps), **extra})

  for theta in np.linspace(0, np.pi / 2, 91):
    add('mix', np.r_[np.cos(theta), np.full(d, np.sin(theta) / np.sqrt(d))], theta=theta)
  for k in (1, 3, 10, 30, 100, 300, 1000):
    if k > d:
      continue
    for theta in np.linspace(0, np.pi / 2, 31):
      v = np.zeros(d)
      v[:k] = np.sin(theta) / np.sqrt(k)
      add('sparse', np.r_[np.cos(theta), v], k=k, theta=theta)
  for b in (-1.0, -0.25, 0.25, 1.0):
    for theta in np.linspace(0, np.pi / 2, 31):
      add('bias', np.r_[np.cos(theta), np.full(d, np.sin(theta) / np.sqrt(d))], b, theta=theta)
  for _ in range(1000):
    m, sd = rng.uniform(0, 0.1), rng.uniform(0, 0.1)
    add('random', np.r_[rng.uniform(0, 1), rng.normal(m, sd, d)])
  return out


def bound_experiment(workdir: str, svm: dict | None = None) -> dict:
  t0 = time.time()
  base = figure_runs.load_config('theory_mlp.py')
  s = base.data.synthetic
  p, eta, d = float(s.p), float(s.eta), int(s.d)
  eps_test = 2 * eta
  family = linear_families(p, eta, d, eps_test)
  mlps = []
  for f in MLP_EPS_FACTORS:
    c = figure_runs.with_eps(base, f * eta, eps_test)
    wd = os.path.join(workdir, f'mlp_eps{f:g}eta')
    results = figure_runs.train_run(c, wd)
    n = results['num_examples']
    std, rob = results['clean_accuracy'], results['robust_accuracy']
    bound = float(theory.robust_accuracy_bound(std, p))
    se = math.sqrt(max(rob * (1 - rob), 1 / n) / n) + p / (1 - p) * math.sqrt(
        max(std * (1 - std), 1 / n) / n)
    mlps.append({'eps_train_over_eta': f, 'eps_train': f * eta, 'standard': std,
                 'robust': rob, 'bound': bound, 'excess': rob - bound,
                 'excess_in_standard_errors': (rob - bound) / se, 'workdir': wd,
                 'engine': figure_runs.run_record(results)})
    logging.info('MLP eps_train=%gη: standard %.4f robust %.4f bound %.4f', f, std, rob, bound)
  fam_excess = max(r['robust'] - float(theory.robust_accuracy_bound(r['standard'], p))
                   for r in family)
  result = {
      'experiment': 'theory_bound', 'theorem': '2.1',
      'params': {'p': p, 'eta': eta, 'd': d, 'eps_test': eps_test, 'norm': 'linf'},
      'config_mlp': base.to_dict(),
      'linear_families': family,
      'linear_max_excess_over_bound': fam_excess,
      'mlps': mlps,
      'mlp_max_excess_over_bound': max(m['excess'] for m in mlps),
      'mlp_robust_accuracy_source': 'the runs\' eval_attack (under engine) on a stratified '
                                    'test set; an upper bound on the true robust accuracy',
  }
  if svm is not None:  # the Theorem 2.2 runs, at their own p, as a second family
    sp = svm['params']
    result['svm'] = {
        'params': sp,
        'points': [{'eps_train': r['eps_train'], 'standard': r['standard_accuracy'],
                    'robust': r['adversarial_accuracy']} for r in svm['runs']],
        'linear_families': linear_families(sp['p'], sp['eta'], sp['d'], sp['eps_test']),
    }
    result['svm']['max_excess_over_bound'] = max(
        q['robust'] - float(theory.robust_accuracy_bound(q['standard'], sp['p']))
        for q in result['svm']['points'] + result['svm']['linear_families'])
  result.update(common.provenance_record(t0))
  return result


# ---------------------------------------------------------------------------
# The Gaussian variant.


def gaussian_experiment(workdir: str) -> dict:
  t0 = time.time()
  base = figure_runs.load_config('theory_gaussian.py')
  dim = int(base.data.synthetic.d) + 1
  a = theory.gaussian_means(dim)
  eps = theory.gaussian_eps(dim)
  curves = [{'D': int(n), **theory.gaussian_bayes_risks(int(n))}
            for n in np.unique(np.round(np.logspace(1, 9, 33)).astype(np.int64))]
  runs = {}
  for name, e in (('standard', 0.0), ('adversarial', eps)):
    c = figure_runs.with_eps(base, e, eps)
    wd = os.path.join(workdir, f'gaussian_{name}')
    results = figure_runs.train_run(c, wd)
    trajectory = []
    for step, (w, b) in sorted(figure_runs.linear_weights(c, wd, 'all').items()):
      trajectory.append({'step': step, 'bias': b, **_weight_summary(w),
                         'standard_accuracy': theory.gaussian_linear_accuracy(w, b, a),
                         'adversarial_accuracy': theory.gaussian_linear_accuracy(w, b, a, eps)})
    runs[name] = {'eps_train': e, 'workdir': wd, 'engine': figure_runs.run_record(results),
                  'trajectory': trajectory, 'final_weights': w.tolist()}
    logging.info('Gaussian %s: final standard %.4f adversarial %.4f, weak mean %.2e',
                 name, trajectory[-1]['standard_accuracy'],
                 trajectory[-1]['adversarial_accuracy'], trajectory[-1]['weak_mean'])
  return {
      'experiment': 'theory_gaussian',
      'params': {'D': dim, 'a_1': 1.0, 'a_weak': float(a[1]), 'eps': eps, 'norm': 'linf'},
      'closed_form_by_D': curves,
      'bayes_at_D': theory.gaussian_bayes_risks(dim),
      'config': base.to_dict(),
      'runs': runs,
      **common.provenance_record(t0),
  }


# ---------------------------------------------------------------------------
# Figures, from the result files only.


def plot_svm(res: dict, path: str) -> str:
  prm = res['params']
  fig, axes = common.subplots(1, 3, figsize=(15, 4))
  for ax, eps_key, title in ((axes[0], 0.0, 'standard SVM (ε_train = 0)'),
                             (axes[1], SVM_EPS[5], 'adversarial SVM (ε_train = 2η)')):
    run = next(r for r in res['runs'] if abs(r['eps_train'] - eps_key) < 1e-9)
    w = np.asarray(run['weights'])
    w = w / np.linalg.norm(w)
    ax.plot(np.arange(1, len(w)), w[1:], lw=0.6, color='tab:gray', label='weak x₂…x_{d+1}')
    ax.bar([0], [w[0]], width=20, color='tab:red', label='robust x₁')
    ax.axhline(0, color='k', lw=0.5)
    ax.set_title(f"{title}\nstd {run['standard_accuracy']:.2%}, "
                 f"adv(ε=2η) {run['adversarial_accuracy']:.2%}", fontsize=10)
    ax.set_xlabel('feature index')
    ax.set_ylabel('weight / ‖w‖₂')
    ax.legend(fontsize=8)
  ax = axes[2]
  runs = sorted(res['runs'], key=lambda r: r['eps_train'])
  e = [r['eps_train'] for r in runs]
  ax.plot(e, [r['standard_accuracy'] for r in runs], 'o-', label='standard accuracy')
  ax.plot(e, [r['adversarial_accuracy'] for r in runs], 's-',
          label=f"adversarial accuracy (ε = 2η = {prm['eps_test']:.3f})")
  ax.plot(e, [r['engine']['robust_accuracy'] for r in runs], 'x', color='k', ms=5,
          label='engine PGD (test set)')
  ax.axhline(prm['p'], color='tab:red', ls=':', lw=1, label=f"p = {prm['p']}")
  ax.axvline(prm['eps_threshold_2p_minus_1'], color='k', ls='--', lw=1, label='ε = 2p − 1')
  ax.set_xlabel('ε_train')
  ax.set_ylabel('accuracy')
  ax.set_ylim(-0.02, 1.02)
  ax2 = ax.twinx()
  ax2.plot(e, [r['w_l2'] for r in runs], color='tab:green', lw=1, alpha=0.6)
  ax2.set_ylabel('‖w‖₂', color='tab:green')
  ax.legend(fontsize=7, loc='lower left')
  ax.set_title('accuracy vs ε_train (w → 0 beyond 2p − 1)', fontsize=10)
  fig.suptitle(f"Theorem 2.2: soft-margin SVM, p = {prm['p']}, d = {prm['d']}, "
               f"η = 4/√d, trained with tradeoff", fontsize=11, y=1.06)
  return common.save_figure(fig, path)


_FAMILY_STYLE = {'mix': ('tab:blue', 'linear: x₁ ↔ f_avg mix'),
                 'sparse': ('tab:cyan', 'linear: k weak features'),
                 'bias': ('tab:purple', 'linear: with bias'),
                 'random': ('tab:gray', 'linear: random')}


def _bound_panel(ax, p, family, title, xmin):
  for fam, (color, label) in _FAMILY_STYLE.items():
    pts = [r for r in family if r['family'] == fam]
    ax.scatter([r['standard'] for r in pts], [r['robust'] for r in pts], s=6, color=color,
               alpha=0.6, label=label)
  x = np.linspace(xmin, 1, 400)
  ax.plot(x, theory.robust_accuracy_bound(x, p), 'k-', lw=1.5, label='bound p/(1−p)·δ')
  ax.set_xlim(xmin, 1.002)
  ax.set_ylim(-0.02, 1.02)
  ax.set_xlabel('standard accuracy 1 − δ')
  ax.set_ylabel('robust accuracy (ℓ∞, ε = 2η)')
  ax.set_title(title, fontsize=10)


def plot_bound(res: dict, path: str) -> str:
  prm = res['params']
  has_svm = 'svm' in res
  fig, axes = common.subplots(1, 2 if has_svm else 1, figsize=(13 if has_svm else 6.5, 5),
                              squeeze=False)
  ax = axes[0, 0]
  _bound_panel(ax, prm['p'], res['linear_families'],
               f"p = {prm['p']}, d = {prm['d']}, η = 3/√d", prm['p'] - 0.1)
  m = res['mlps']
  sc = ax.scatter([r['standard'] for r in m], [r['robust'] for r in m],
                  c=[r['eps_train_over_eta'] for r in m], cmap='autumn', marker='*', s=120,
                  edgecolors='k', zorder=5, label='MLP (64, 64), PGD-trained, PGD-evaluated')
  fig.colorbar(sc, ax=ax, label='MLP ε_train / η')
  ax.legend(fontsize=7, loc='upper right')
  if has_svm:
    sv = res['svm']
    ax = axes[0, 1]
    _bound_panel(ax, sv['params']['p'], sv['linear_families'],
                 f"p = {sv['params']['p']}, d = {sv['params']['d']}, η = 4/√d",
                 sv['params']['p'] - 0.03)
    ax.scatter([q['standard'] for q in sv['points']], [q['robust'] for q in sv['points']],
               marker='D', s=40, color='tab:red', edgecolors='k', zorder=5,
               label='SVMs of Thm 2.2 (ε_train sweep)')
    ax.legend(fontsize=7, loc='upper right')
  fig.suptitle('Theorem 2.1: robust accuracy ≤ p/(1−p)·δ (points with lower standard '
               'accuracy lie off the left edge)', fontsize=11)
  return common.save_figure(fig, path)


def plot_gaussian(res: dict, path: str) -> str:
  prm = res['params']
  fig, axes = common.subplots(1, 3, figsize=(16, 4.2))
  ax = axes[0]
  c = res['closed_form_by_D']
  dims = [r['D'] for r in c]
  ax.semilogx(dims, [r['bayes_risk'] for r in c], 'b-', label='Bayes sign(aᵀx): risk')
  ax.semilogx(dims, [r['bayes_adversarial_risk'] for r in c], 'b--',
              label='Bayes: adversarial risk')
  ax.semilogx(dims, [r['x1_risk'] for r in c], 'r-', label='sign(x₁): risk = Φ(−1)')
  ax.semilogx(dims, [r['x1_adversarial_risk'] for r in c], 'r--',
              label='sign(x₁): adversarial risk')
  ax.set_xlabel('D')
  ax.set_ylabel('risk (closed form)')
  ax.set_title('ε = 2√(log D/(D−1))', fontsize=10)
  ax.legend(fontsize=7)
  for name, ls in (('standard', '-'), ('adversarial', '--')):
    t = res['runs'][name]['trajectory']
    steps = [r['step'] for r in t]
    axes[1].plot(steps, [r['w1'] for r in t], 'r' + ls, label=f'{name}: w₁')
    axes[1].plot(steps, [r['weak_mean'] * math.sqrt(prm['D'] - 1) for r in t], 'b' + ls,
                 label=f'{name}: mean weak weight × √(D−1)')
    axes[2].plot(steps, [r['standard_accuracy'] for r in t], 'g' + ls,
                 label=f'{name} training: standard acc.')
    axes[2].plot(steps, [r['adversarial_accuracy'] for r in t], 'm' + ls,
                 label=f'{name} training: adversarial acc.')
  axes[1].axhline(0, color='k', lw=0.5)
  axes[1].set_xlabel('training step')
  axes[1].set_ylabel('weight')
  axes[1].set_title(f"linear model weights over training, D = {prm['D']}", fontsize=10)
  axes[1].legend(fontsize=7)
  axes[2].set_xlabel('training step')
  axes[2].set_ylabel('accuracy (closed form)')
  axes[2].set_title(f"ε = {prm['eps']:.3f}", fontsize=10)
  axes[2].legend(fontsize=7)
  fig.suptitle('Gaussian variant: x = a·y + N(0, I), a = (1, √(log D/(D−1)), …)', fontsize=11)
  return common.save_figure(fig, path)


def run(workdir: str, results_dir: str, figures_dir: str, plot_only: bool) -> list[str]:
  """Runs (unless plot_only) the three experiments, then draws their figures."""
  paths = {k: os.path.join(results_dir, f'theory_{k}.json') for k in ('svm', 'bound', 'gaussian')}
  if not plot_only:
    svm = svm_experiment(workdir)
    common.write_json(paths['svm'], svm)
    common.write_json(paths['bound'], bound_experiment(workdir, svm))
    common.write_json(paths['gaussian'], gaussian_experiment(workdir))
  return [plot_svm(common.read_json(paths['svm']), os.path.join(figures_dir, 'theory_svm.png')),
          plot_bound(common.read_json(paths['bound']),
                     os.path.join(figures_dir, 'theory_bound.png')),
          plot_gaussian(common.read_json(paths['gaussian']),
                        os.path.join(figures_dir, 'theory_gaussian.png'))]
