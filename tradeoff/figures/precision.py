r"""Does computing in bfloat16 weaken the attack? One trained run, attacked twice.

    python -m tradeoff.figures precision --workdir=runs/sweeps/precision_cifar10/model.dtype=bfloat16

The run's newest checkpoint is evaluated on its first `num_examples` test
images by its own evaluation attack and by APGD-CE (100 iterations), once with
the model computing in float32 and once in bfloat16 (model.eval_dtype), with
the same parameters, the same random starts and the same images. A bf16
gradient is a coarser direction; if it weakens the attack, robust accuracy
under the bf16 attack is higher. The record gives both, their difference and
its binomial standard error, and the examples on which the two disagree.

Writes figures/results/precision_<run>.json and figures/precision_<run>.png.
"""
from __future__ import annotations

import math
import os
import time

import jax
import ml_collections
import numpy as np

from tradeoff import accuracy
from tradeoff import attacks
from tradeoff import evaluation
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common
from tradeoff.figures import sanity

DTYPES = ('float32', 'bfloat16')


def _attacks(cfg, bounds, num_classes: int) -> dict:
  ev = cfg.eval_attack
  apgd = ml_collections.ConfigDict({'name': 'apgd_ce', 'norm': ev.norm, 'eps': float(ev.eps),
                                    'num_steps': 100, 'restarts': 1})
  return {'eval_attack': attacks.from_config(ev, bounds, num_classes=num_classes),
          'apgd_ce': attacks.from_config(apgd, bounds)}


def precision_experiment(workdir: str, num_examples: int = 1000) -> dict:
  t0 = time.time()
  rows = {}
  for dtype in DTYPES:
    config = workdir_lib.load_config(workdir)
    config.model.eval_dtype = dtype
    r = evaluation.restore_for_evaluation(config, workdir, num_examples)
    exp, state, y = r.exp, r.state, r.y
    batch = exp.config.data.eval_batch_size
    clean = accuracy.robust_mask(accuracy.make_robust_step(exp.eval_module, attacks.Attack()),
                                 r.params, r.model_state, r.x, y, batch, r.rng)
    for name, atk in _attacks(exp.config, exp.ds.bounds, exp.ds.num_classes).items():
      step = accuracy.make_robust_step(exp.eval_module, atk)
      ok = accuracy.robust_mask(step, r.params, r.model_state, r.x, y, batch, r.rng)
      rows.setdefault(name, {'attack': atk.describe()})[dtype] = {
          'clean_accuracy': float(clean.mean()), 'robust_accuracy': float((ok & clean).mean()),
          'robust': (ok & clean)}
      jax.clear_caches()
  out = {}
  for name, row in rows.items():
    a, b = row['float32'].pop('robust'), row['bfloat16'].pop('robust')
    m = len(a)
    diff = float(b.mean() - a.mean())
    out[name] = {**row, 'bf16_minus_f32': diff,
                 'standard_error': math.sqrt(max(np.mean(a != b), 1 / m) / m),
                 'robust_in_bf16_only': int(np.sum(b & ~a)),
                 'robust_in_f32_only': int(np.sum(a & ~b))}
  return {'experiment': 'precision', 'workdir': os.path.abspath(workdir),
          'trained_dtype': workdir_lib.load_config(workdir).model.get('dtype', 'float32'),
          'checkpoint_step': int(state.step), 'num_examples': int(len(y)), 'attacks': out,
          **common.provenance_record(t0)}


def plot(res: dict, path: str) -> str:
  fig, ax = common.subplots(figsize=(5, 3.2))
  names = list(res['attacks'])
  for i, dtype in enumerate(DTYPES):
    vals = [res['attacks'][k][dtype]['robust_accuracy'] for k in names]
    ax.bar(np.arange(len(names)) + (i - 0.5) * 0.38, vals, 0.38, label=f'attack in {dtype}')
  ax.set_xticks(range(len(names)), [res['attacks'][k]['attack']['name'] for k in names])
  ax.set_ylabel('robust accuracy')
  ax.set_title(f"{os.path.basename(res['workdir'])} (trained in {res['trained_dtype']}), "
               f"{res['num_examples']} test images", fontsize=8)
  ax.legend(fontsize=7)
  return common.save_figure(fig, path)


def run(workdir: str, results_dir: str, figures_dir: str, plot_only: bool,
        num_examples: int = 1000) -> list[str]:
  return common.experiment_and_figure(
      f'precision_{sanity.run_name(workdir)}', results_dir, figures_dir, plot_only,
      lambda: precision_experiment(workdir, num_examples), plot)
