r"""What robust models see (§3 of Tsipras et al.): helpers and the binary-MNIST Figure 5.

    python -m tradeoff.figures binary_mnist [--workdir=runs/binary_mnist] [--plot_only]

Figure 5: on MNIST 5 vs 7 with a linear classifier, (a) each pixel's Pearson
correlation with the label, (b) the weights of a standard and of an ℓ∞
adversarially trained (ε = 0.2) model, (c) standard and robust accuracy of
models trained only on the k most label-correlated pixels. The number beside
it: the share of a model's weight mass ‖w‖₁ on weakly correlated pixels.

The pure helpers (`normalize_gradient_image`, `interpolate`, `top_k_features`,
...) are shared with the gradient and large-ε figures.
"""
from __future__ import annotations

import logging
import os
import time

import ml_collections
import numpy as np

from tradeoff import data
from tradeoff.figures import common
from tradeoff.figures import runs as figure_runs

TOP_K = (1, 3, 10, 30, 100, 300, 784)
WEAK_CORRELATION = (0.05, 0.1, 0.2)  # |corr| thresholds for the weight-mass numbers


# ---------------------------------------------------------------------------
# Pure helpers.


def pixel_label_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Pearson correlation of each flattened input feature with the label (0 where constant)."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  y = np.asarray(y, np.float64)
  xc, yc = x - x.mean(0), y - y.mean()
  denom = np.sqrt((xc ** 2).sum(0) * (yc ** 2).sum())
  num = xc.T @ yc
  return np.where(denom > 0, num / np.where(denom > 0, denom, 1), 0.0)


def top_k_features(corr: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k features with the largest |corr| (ties: lower index first), sorted."""
  if not 1 <= k <= corr.size:
    raise ValueError(f'k={k} must be in [1, {corr.size}].')
  order = np.lexsort((np.arange(corr.size), -np.abs(corr)))
  return np.sort(order[:k])


def weight_mass_below(w: np.ndarray, corr: np.ndarray, threshold: float) -> float:
  """Share of ‖w‖₁ on features with |corr| < threshold."""
  w = np.abs(np.asarray(w, np.float64).ravel())
  total = w.sum()
  return float(w[np.abs(corr) < threshold].sum() / total) if total > 0 else 0.0


# ---------------------------------------------------------------------------
# Figure 5.


def _config(eps_train: float, keep=()) -> ml_collections.ConfigDict:
  c = figure_runs.with_eps(figure_runs.load_config('binary_mnist_linear.py'), eps_train)
  c.model.keep_features = tuple(int(i) for i in keep)
  return c


def binary_mnist_experiment(workdir: str) -> dict:
  t0 = time.time()
  base = _config(0.0)
  ds = data.load(base.data, base.seed)
  corr = pixel_label_correlation(data.to_float(ds.x_train), ds.y_train)
  eps = float(base.eps)
  models = {}
  for name, e in (('standard', 0.0), ('robust', eps)):
    c = _config(e)
    wd = os.path.join(workdir, name)
    results = figure_runs.train_run(c, wd)
    (_, (w, b)), = figure_runs.linear_weights(c, wd).items()
    models[name] = {
        'eps_train': e, 'workdir': wd, 'engine': figure_runs.run_record(results),
        'weights': w.tolist(), 'bias': b,
        'weight_mass_below': {str(t): weight_mass_below(w, corr, t) for t in WEAK_CORRELATION}}
    logging.info('binary MNIST %s: clean %.4f robust %.4f', name, results['clean_accuracy'],
                 results['robust_accuracy'])
  top_k = []
  for k in TOP_K:
    keep = top_k_features(corr, k) if k < corr.size else ()
    for name, e in (('standard', 0.0), ('robust', eps)):
      c = _config(e, keep)
      wd = os.path.join(workdir, name if k == corr.size else f'{name}_top{k}')
      results = figure_runs.train_run(c, wd)
      top_k.append({'k': k, 'model': name, 'eps_train': e,
                    'clean_accuracy': results['clean_accuracy'],
                    'robust_accuracy': results['robust_accuracy'],
                    'engine': figure_runs.run_record(results)})
      logging.info('top-%d %s: clean %.4f robust %.4f', k, name, results['clean_accuracy'],
                   results['robust_accuracy'])
  return {
      'experiment': 'binary_mnist_linear', 'figure': '5',
      'params': {'classes': [5, 7], 'label_1': 7, 'eps': eps, 'norm': 'linf',
                 'top_k': list(TOP_K), 'weak_correlation_thresholds': list(WEAK_CORRELATION)},
      'config': base.to_dict(),
      'correlation': corr.tolist(),
      'models': models,
      'top_k': top_k,
      **common.provenance_record(t0),
  }


def plot_binary_mnist(res: dict, path: str) -> str:
  corr = np.asarray(res['correlation']).reshape(28, 28)
  fig, axes = common.subplots(1, 4, figsize=(21, 4.2))
  fig.subplots_adjust(wspace=0.4)
  im = axes[0].imshow(corr, cmap='RdBu_r', vmin=-np.abs(corr).max(), vmax=np.abs(corr).max())
  axes[0].set_title('(a) pixel–label correlation\n(red: more likely 7)', fontsize=10)
  fig.colorbar(im, ax=axes[0], fraction=0.046)
  t = str(res['params']['weak_correlation_thresholds'][1])
  for ax, name in ((axes[1], 'standard'), (axes[2], 'robust')):
    m = res['models'][name]
    w = np.asarray(m['weights']).reshape(28, 28)
    v = np.abs(w).max()
    im = ax.imshow(w, cmap='RdBu_r', vmin=-v, vmax=v)
    e = m['engine']
    ax.set_title(f"(b) {name} model weights (ε_train = {m['eps_train']:g})\n"
                 f"clean {e['clean_accuracy']:.1%}, robust {e['robust_accuracy']:.1%}; "
                 f"mass on |corr| < {t}: {m['weight_mass_below'][t]:.1%}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
  for ax in axes[:3]:
    ax.set_xticks([])
    ax.set_yticks([])
  ax = axes[3]
  for name, color in (('standard', 'tab:blue'), ('robust', 'tab:red')):
    rows = sorted((r for r in res['top_k'] if r['model'] == name), key=lambda r: r['k'])
    ks = [r['k'] for r in rows]
    ax.semilogx(ks, [r['clean_accuracy'] for r in rows], 'o-', color=color,
                label=f'{name} model: standard acc.')
    ax.semilogx(ks, [r['robust_accuracy'] for r in rows], 's--', color=color,
                label=f'{name} model: robust acc.')
  atk = res['models']['robust']['engine']['eval_attack']
  ax.set_xlabel('k most label-correlated pixels used')
  ax.set_ylabel('test accuracy')
  ax.set_title(f"(c) linear models on the top-k pixels\n(robust: {atk['name']} × "
               f"{atk['restarts']} restarts, ε = {atk['eps']:g})", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.suptitle('Binary MNIST (5 vs 7), linear classifiers, ℓ∞', fontsize=11)
  return common.save_figure(fig, path)


def run(workdir: str, results_dir: str, figures_dir: str, plot_only: bool) -> list[str]:
  path = os.path.join(results_dir, 'binary_mnist.json')
  if not plot_only:
    common.write_json(path, binary_mnist_experiment(workdir))
  return [plot_binary_mnist(common.read_json(path),
                            os.path.join(figures_dir, 'binary_mnist.png'))]
