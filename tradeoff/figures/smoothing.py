r"""Randomized smoothing's trade-off (Cohen et al. 2019): certified accuracy vs ℓ2
radius for base classifiers trained with Gaussian noise of several σ.

    python -m launch.sweep --sweep=configs/sweeps/smoothing_mnist.py
    python -m tradeoff.figures smoothing --results=figures/results/smoothing_mnist.json

Each run of the collected sweep file is a base classifier trained with
`loss.name=gaussian_augment` at `loss.sigma`; its smoothed classifier at the
same σ is certified (CERTIFY: n0 selection samples, n estimation samples,
Clopper-Pearson at level α) and run through PREDICT (its own samples) on the
first `num_examples` test images. Certified accuracy at radius r is the
fraction certified with the right class and radius ≥ r; an abstention counts
as wrong. Writes figures/results/certify_<sweep>.json (per-example predictions
and radii kept, so the curves can be redrawn at any radii) and
figures/certify_<sweep>.png: certified accuracy vs radius, one line per σ, and
the σ trade-off (PREDICT's clean accuracy vs certified accuracy at fixed radii).
"""
from __future__ import annotations

import time

import jax
import numpy as np

from tradeoff import errors
from tradeoff import evaluation
from tradeoff import experiment
from tradeoff import smoothing
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common

RADII = tuple(np.round(np.arange(0.0, 4.01, 0.05), 2))
TRADEOFF_RADII = (0.5, 1.0, 2.0)


def certify_run(workdir: str, num_examples: int, n0: int, n: int, predict_n: int,
                alpha: float, chunk: int, batch_size: int) -> dict:
  """CERTIFY and PREDICT of one trained base classifier's smoothed classifier."""
  t0 = time.time()
  config = workdir_lib.load_config(workdir)
  sigma = float(config.loss.get('sigma', 0.0))
  if config.loss.name != 'gaussian_augment' or not sigma > 0:
    raise errors.UserError(f'{workdir} was trained with loss {config.loss.name!r} (sigma='
                           f'{sigma}); certifying needs a base classifier trained with '
                           f'loss.name=gaussian_augment and loss.sigma > 0.')
  exp = evaluation.open_evaluation(config, workdir)
  state = exp.run
  x, y = exp.ds.x_test[:num_examples], exp.ds.y_test[:num_examples]
  g = smoothing.Smoothed(exp.eval_module, exp.ds.num_classes, sigma, chunk=chunk,
                         batch_size=batch_size)
  _, _, key = experiment.rng_streams(config.seed)
  k_certify, k_predict = jax.random.split(key)
  t1 = time.time()
  pred, radius = g.certify(state.params, state.model_state, x, k_certify, n0=n0, n=n,
                           alpha=alpha)
  certify_s = time.time() - t1
  t1 = time.time()
  predicted = g.predict(state.params, state.model_state, x, k_predict, n=predict_n,
                        alpha=alpha)
  predict_s = time.time() - t1
  jax.clear_caches()
  train = common.read_json(workdir_lib.results_path(workdir))
  correct = pred == y
  return {'workdir': workdir, 'sigma': sigma, 'checkpoint_step': int(state.step),
          'base_clean_accuracy': train.get('clean_accuracy'),
          'train_commit': train.get('commit'), 'train_time_s': train.get('train_time_s'),
          'smoothed_clean_accuracy': float(np.mean(predicted == y)),
          'predict_abstain_rate': float(np.mean(predicted == smoothing.ABSTAIN)),
          'certify_abstain_rate': float(np.mean(pred == smoothing.ABSTAIN)),
          'certified_accuracy': dict(zip(map(str, RADII), smoothing.certified_accuracy(
              pred, radius, y, RADII).tolist())),
          'mean_certified_radius_of_correct': float(np.mean(np.where(correct, radius, 0.0))),
          'certify_time_s': certify_s, 'predict_time_s': predict_s,
          'wall_time_s': time.time() - t0,
          'labels': y.tolist(), 'prediction': pred.tolist(), 'radius': radius.tolist(),
          'smoothed_prediction': predicted.tolist()}


def smoothing_experiment(sweep_results: str, num_examples: int = 500, n0: int = 100,
                         n: int = 10_000, predict_n: int = 1000, alpha: float = 0.001,
                         chunk: int = 100, batch_size: int = 100) -> dict:
  t0 = time.time()
  sweep = common.read_json(sweep_results)
  runs = [r for r in sweep['runs'] if r.get('status') == 'finished']
  if not runs:
    raise errors.UserError(f'{sweep_results} has no finished runs; run its sweep first.')
  models = []
  for r in sorted(runs, key=lambda r: r['point'].get('loss.sigma', 0)):
    models.append(certify_run(r['workdir'], num_examples, n0, n, predict_n, alpha, chunk,
                              batch_size))
    m = models[-1]
    print(f"σ = {m['sigma']}: smoothed clean {m['smoothed_clean_accuracy']:.4f}, certified at "
          f"r = 1: {m['certified_accuracy']['1.0']:.4f} ({m['wall_time_s']:.0f} s)")
  return {'experiment': 'smoothing', 'sweep': sweep['sweep'], 'sweep_results': sweep_results,
          'settings': {'num_examples': num_examples, 'n0': n0, 'n': n, 'predict_n': predict_n,
                       'alpha': alpha, 'chunk': chunk, 'batch_size': batch_size},
          # The largest radius n samples can certify: all n votes for the top class.
          'max_certifiable_radius_over_sigma': float(
              smoothing.certify_from_counts(np.array([[1, 0]]), np.array([[n, 0]]), 1.0,
                                            alpha)[1][0]),
          'models': models, **common.provenance_record(t0)}


def plot(res: dict, path: str) -> str:
  fig, (ax, ax2) = common.subplots(1, 2, figsize=(10, 4.4))
  radii = np.array(RADII)
  for m in res['models']:
    acc = [m['certified_accuracy'][str(r)] for r in RADII]
    ax.plot(radii, acc, label=f"σ = {m['sigma']:g}")
  s = res['settings']
  ax.set_xlabel('ℓ2 radius')
  ax.set_ylabel('certified accuracy')
  ax.set_title(f"CERTIFY, first {s['num_examples']} test images (n0 = {s['n0']}, "
               f"n = {s['n']}, α = {s['alpha']})", fontsize=8)
  ax.legend(fontsize=7)
  sigmas = [m['sigma'] for m in res['models']]
  ax2.plot(sigmas, [m['smoothed_clean_accuracy'] for m in res['models']], 'o-',
           label=f"clean (PREDICT, n = {s['predict_n']})")
  ax2.plot(sigmas, [m['base_clean_accuracy'] for m in res['models']], 'x:', color='grey',
           label='base classifier, clean (all test images)')
  for r in TRADEOFF_RADII:
    ax2.plot(sigmas, [m['certified_accuracy'][str(r)] for m in res['models']], 's--',
             label=f'certified at r = {r:g}')
  ax2.set_xscale('log')
  ax2.minorticks_off()
  ax2.set_xticks(sigmas)
  ax2.set_xticklabels([f'{v:g}' for v in sigmas])
  ax2.set_xlabel('noise σ (training and smoothing)')
  ax2.set_ylabel('accuracy')
  ax2.set_title('the σ trade-off', fontsize=8)
  ax2.legend(fontsize=7, loc='upper center', bbox_to_anchor=(0.5, -0.2), ncol=2)
  return common.save_figure(fig, path)


def run(sweep_results: str, results_dir: str, figures_dir: str, plot_only: bool,
        **kwargs) -> list[str]:
  return common.experiment_and_figure(
      f'certify_{common.file_stem(sweep_results)}', results_dir, figures_dir, plot_only,
      lambda: smoothing_experiment(sweep_results, **kwargs), plot)
