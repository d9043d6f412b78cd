r"""Evaluation sanity checks of a trained run (Carlini et al. 2019, "On evaluating
adversarial robustness").

    python -m tradeoff.figures sanity --workdir=runs/mnist_linf [--plot_only]

The run's newest checkpoint is attacked over a grid of ε (multiples of its
evaluation ε, up to the whole input box) by a white-box attack and a black-box
one (Square, ℓ∞ or ℓ2; image inputs only), on the first `num_examples` test
images. The white box is AutoAttack's gradient stages by default (APGD-CE, then
APGD-T on the points it left robust: `white_box='autoattack_fast'`), or APGD-CE
alone (`white_box='apgd_ce'`); a point Square finds but APGD-CE misses may only
need a targeted loss, which the first catches and the second flags. Three checks:

- robust accuracy does not rise with ε (it may stay level);
- it reaches (nearly) 0 at the largest ε, where the ball covers the whole box;
- the black-box attack never finds more than the white-box one: where Square
  beats the gradient attacks, the gradients are suspect and the run is flagged as possibly
  gradient-masked.

Writes figures/results/sanity_<name>.json and figures/sanity_<name>.png, where
<name> is `run_name(workdir)` (the run's directory and its parent's).
"""
from __future__ import annotations

import os
import re
import time

import jax
import ml_collections

from tradeoff import accuracy
from tradeoff import attacks
from tradeoff import configlib
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import registry
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common

EPS_MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0)
WHITE_BOXES = ('autoattack_fast', 'apgd_ce')
# The largest ε: the whole box for ℓ∞ ([0, 1] pixels); for ℓ2 the box's diagonal
# is out of reach of any sane budget, so a large multiple stands in.
FULL_BOX = {'linf': 1.0}


def checks(grid: list[dict], num_examples: int, tolerance: int = 1) -> dict:
  """The three checks on a grid of {'eps', 'white_box', 'black_box'} robust accuracies.

  `tolerance` examples of slack absorb the attacks' randomness.
  """
  slack = tolerance / num_examples
  white = [g['white_box'] for g in grid]
  monotone = all(b <= a + slack for a, b in zip(white, white[1:]))
  reaches_zero = white[-1] <= slack
  masked = [g['eps'] for g in grid
            if g.get('black_box') is not None and g['black_box'] < g['white_box'] - slack]
  return {'monotone_in_eps': monotone, 'reaches_zero_at_largest_eps': reaches_zero,
          'black_box_beats_white_box_at_eps': masked,
          'possibly_gradient_masked': bool(masked),
          'passed': monotone and reaches_zero and not masked}


def white_box_attack(name: str, norm: str, eps: float, apgd_steps: int, bounds,
                     num_classes: int | None = None):
  """The white-box attack of the checks: `name` in WHITE_BOXES, APGD at `apgd_steps`."""
  registry.check_choice('sanity white box', name, WHITE_BOXES)
  settings = configlib.autoattack_config()
  settings.apgd_steps = apgd_steps
  block = ml_collections.ConfigDict({'name': name, 'norm': norm, 'eps': eps,
                                     'num_steps': apgd_steps, 'restarts': 1,
                                     'autoattack': settings})
  return attacks.from_config(block, bounds, num_classes=num_classes)


def sanity_experiment(workdir: str, num_examples: int = 500, apgd_steps: int = 100,
                      square_queries: int = 1000, white_box: str = 'autoattack_fast') -> dict:
  t0 = time.time()
  registry.check_choice('sanity white box', white_box, WHITE_BOXES)
  r = evaluation.restore_for_evaluation(workdir_lib.load_config(workdir), workdir, num_examples)
  exp, state, cfg = r.exp, r.state, r.exp.config
  x, y, params, model_state, rng = r.x, r.y, r.params, r.model_state, r.rng
  norm, eps0 = cfg.eval_attack.norm, float(cfg.eval_attack.eps)
  if eps0 <= 0:
    raise errors.UserError(f'{workdir} is evaluated at eps = 0: there is no threat model to check.')
  largest = FULL_BOX.get(norm, 16 * eps0)
  grid_eps = sorted({min(m * eps0, largest) for m in EPS_MULTIPLES} | {largest})
  grid = []
  for eps in grid_eps:
    white = white_box_attack(white_box, norm, eps, apgd_steps, exp.ds.bounds,
                             exp.ds.num_classes)
    row = {'eps': eps, 'white_box_attack': white.describe()}
    res = accuracy.evaluate_clean_and_robust(exp.eval_module, white, params, model_state, x, y,
                                             cfg.data.eval_batch_size, rng)
    row['white_box'], row['clean_accuracy'] = res['robust_accuracy'], res['clean_accuracy']
    if 'robust_accuracy_by_stage' in res:
      row['white_box_by_stage'] = [{k: st[k] for k in ('attack', 'robust_accuracy')}
                                   for st in res['robust_accuracy_by_stage']]
    if x.ndim == 4:
      black = attacks.Square(norm=norm, eps=eps, num_queries=square_queries,
                             bounds=exp.ds.bounds)
      row['black_box_attack'] = black.describe()
      row['black_box'] = accuracy.evaluate_clean_and_robust(
          exp.eval_module, black, params, model_state, x, y, cfg.data.eval_batch_size,
          rng)['robust_accuracy']
    grid.append(row)
    jax.clear_caches()
  return {'experiment': 'sanity', 'workdir': os.path.abspath(workdir),
          'checkpoint_step': int(state.step), 'norm': norm, 'eval_eps': eps0,
          'num_examples': int(len(y)), 'white_box': white_box, 'grid': grid,
          'checks': checks(grid, len(y)),
          **common.provenance_record(t0)}


def plot(res: dict, path: str) -> str:
  fig, ax = common.subplots(figsize=(5, 3.5))
  eps = [g['eps'] for g in res['grid']]
  white = common.attack_label(res['grid'][0]['white_box_attack'])
  ax.plot(eps, [g['white_box'] for g in res['grid']], 'o-', label=f'white box: {white}')
  if any('black_box' in g for g in res['grid']):
    black = common.attack_label(res['grid'][0]['black_box_attack'])
    ax.plot(eps, [g.get('black_box') for g in res['grid']], 's--', label=f'black box: {black}')
  ax.axvline(res['eval_eps'], color='grey', lw=0.8, ls=':')
  ax.set_xscale('log')
  ax.set_xlabel(f"{res['norm']} ε")
  ax.set_ylabel('robust accuracy')
  verdict = 'passed' if res['checks']['passed'] else 'FAILED: ' + ', '.join(
      k for k in ('monotone_in_eps', 'reaches_zero_at_largest_eps') if not res['checks'][k]) + (
          ' possibly gradient-masked' if res['checks']['possibly_gradient_masked'] else '')
  ax.set_title(f"{os.path.basename(res['workdir'])}: checks {verdict}", fontsize=8)
  ax.legend(fontsize=7)
  return common.save_figure(fig, path)


def run_name(workdir: str) -> str:
  """A file name for a run: its directory and its parent's, e.g. a sweep's run
  'figure6_mnist_linf/eps=0.3,seed=0' -> 'figure6_mnist_linf_eps_0.3_seed_0'."""
  path = os.path.normpath(os.path.abspath(workdir))
  name = f'{os.path.basename(os.path.dirname(path))}_{os.path.basename(path)}'
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')


def run(workdir: str, results_dir: str, figures_dir: str, plot_only: bool,
        **kwargs) -> list[str]:
  return common.experiment_and_figure(
      f'sanity_{run_name(workdir)}', results_dir, figures_dir, plot_only,
      lambda: sanity_experiment(workdir, **kwargs), plot)
