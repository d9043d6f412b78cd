r"""What robust models see (§3 of Tsipras et al.): Figures 2, 3 and 4, and a number for each.

    python -m tradeoff.figures gradients      [--datasets=mnist,fashion_mnist] [--plot_only]
    python -m tradeoff.figures adversarial    [--datasets=...] [--plot_only]
    python -m tradeoff.figures interpolation  [--datasets=...] [--plot_only]

The trained models come from a spec, configs/figures/robust_models.py by
default (`--spec=FILE`, entries overridable as `--spec.mnist.standard=DIR`):
per dataset the workdirs of a standard model, an independently trained
second standard model, and ℓ∞ / ℓ2 adversarially trained models ('' where
there is none), plus the large ε of Figure 3. Each command writes
figures/results/<command>_<dataset>.json and figures/<command>_<dataset>.png.

Figure 2 (gradients): ∇ₓ CE(f(x), y) at the same test images (the first of
each class) for every model. Single-channel images are shown signed (red
positive, blue negative); colour ones clipped to ±3σ and rescaled to [0, 1].
Number: the alignment score, the mean over test images of the absolute
Pearson correlation between gradient and image (and of |gradient| and image).

Figure 3 (adversarial): targeted large-ε adversarial examples (target: a
seeded random other class), PGD from x itself (no random start),
`attack_steps` normalised-gradient (ℓ2) or sign (ℓ∞) steps of size
step_scale·ε/attack_steps, against the standard and the robust model.
Number: the share of these examples that the independently trained standard
model classifies as the target class, for examples made against the robust
vs the standard model.

Figure 4 (interpolation): the 20 points from x to its large-ε adversarial
example against the robust model, with the robust model's probability of the
target class along the segment.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tradeoff import attacks
from tradeoff import data
from tradeoff import evaluation
from tradeoff import workdir as workdir_lib
from tradeoff import models
from tradeoff import objectives
from tradeoff.figures import common
from tradeoff.figures import images
from tradeoff.figures import runs as figure_runs
from tradeoff.figures import specs

COMMANDS = ('gradients', 'adversarial', 'interpolation')
ROLES = specs.ROLES
DEFAULT_SPEC = specs.DEFAULT_SPEC


# ---------------------------------------------------------------------------
# Pure helpers.


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Per-example Pearson correlation of a[i] and b[i] over all their entries (0 if constant)."""
  a = np.asarray(a, np.float64).reshape(len(a), -1)
  b = np.asarray(b, np.float64).reshape(len(b), -1)
  a = a - a.mean(1, keepdims=True)
  b = b - b.mean(1, keepdims=True)
  denom = np.sqrt((a * a).sum(1) * (b * b).sum(1))
  return np.where(denom > 0, (a * b).sum(1) / np.where(denom > 0, denom, 1), 0.0)


def alignment_scores(grads: np.ndarray, images: np.ndarray) -> dict[str, float]:
  """How much input gradients look like their inputs, averaged over examples.

  abs_pearson: mean |corr(g, x)| (sign-free: a gradient that paints the digit
  with either sign counts); abs_grad_pearson: mean corr(|g|, x) (does the
  gradient's magnitude sit on the object rather than on the background?).
  """
  return {'abs_pearson': float(np.mean(np.abs(pearson(grads, images)))),
          'abs_grad_pearson': float(np.mean(pearson(np.abs(grads), images)))}


def random_targets(y: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
  """A uniformly random class other than y[i] for each i, from a seeded generator."""
  if num_classes < 2:
    raise ValueError(f'Targeted attacks need num_classes >= 2, got {num_classes}.')
  shift = np.random.default_rng(seed).integers(1, num_classes, size=len(y))
  return ((np.asarray(y) + shift) % num_classes).astype(np.int32)


def first_of_each_class(y: np.ndarray, num_classes: int) -> np.ndarray:
  """Index of the first example of every class, in class order."""
  idx = []
  for k in range(num_classes):
    hits = np.flatnonzero(np.asarray(y) == k)
    if hits.size == 0:
      raise ValueError(f'No example of class {k} among {len(y)} examples.')
    idx.append(int(hits[0]))
  return np.asarray(idx)


def gradient_image(g: np.ndarray) -> np.ndarray:
  """The paper's display of one input gradient: signed colours for one channel,
  ±3σ clip-and-rescale for colour images."""
  g = np.asarray(g)
  if g.ndim == 2 or g.shape[-1] == 1:
    return images.signed_gradient_rgb(g)
  return images.normalize_gradient_image(g)


# ---------------------------------------------------------------------------
# Trained models.


@dataclasses.dataclass
class Model:
  role: str
  workdir: str
  config: ml_collections.ConfigDict
  results: dict
  logits: Callable[[jax.Array], jax.Array]   # x f32[B, ...] in [0, 1] -> logits f32[B, K]


def load_model(role: str, workdir: str) -> tuple[Model, data.Dataset]:
  """The latest checkpoint of a finished run, as a jitted logits function."""
  config = workdir_lib.load_config(workdir)
  results = common.read_json(workdir_lib.results_path(workdir))
  ev = evaluation.open_evaluation(config, workdir)
  return Model(role, workdir, config, results, ev.run.logits), ev.ds


def _batched(fn, *arrays, batch_size: int = 250) -> np.ndarray:
  n = len(arrays[0])
  return np.concatenate([np.asarray(fn(*(a[i:i + batch_size] for a in arrays)))
                         for i in range(0, n, batch_size)])


def predict(model: Model, x: np.ndarray) -> np.ndarray:
  return _batched(lambda b: models.predict(model.logits(jnp.asarray(b))), x)


def input_gradients(model: Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """∇ₓ of the cross-entropy loss at (x, y), per example."""
  grad = jax.jit(jax.grad(lambda z, t: jnp.sum(objectives.cross_entropy(model.logits(z), t))))
  return _batched(lambda a, b: grad(jnp.asarray(a), jnp.asarray(b)), x, y)


def large_eps_attack(norm: str, eps: float, spec, bounds) -> attacks.Attack:
  return attacks.Attack(norm=norm, eps=float(eps), num_steps=int(spec.attack_steps),
                        step_size=float(spec.step_scale) * eps / int(spec.attack_steps),
                        restarts=1, random_start=False, loss='ce', bounds=bounds, unroll=False)


def targeted_examples(model: Model, atk: attacks.Attack, x: np.ndarray,
                      targets: np.ndarray) -> np.ndarray:
  run = jax.jit(lambda a, t: atk(model.logits, a, t, jax.random.key(0), targeted=True))
  return _batched(lambda a, t: run(jnp.asarray(a), jnp.asarray(t)), x, targets)


# ---------------------------------------------------------------------------
# Experiments.


def _panel_models(spec, dataset: str, roles=ROLES
                  ) -> tuple[dict[str, Model], Model | None, data.Dataset]:
  """The spec's finished models of `dataset` among `roles` ('' entries skipped)."""
  panel = specs.spec_panel(spec, dataset)
  loaded, ds = {}, None
  for role in roles:
    wd = panel.get(role, '')
    if not wd:
      continue
    if not workdir_lib.exists(workdir_lib.results_path(wd)):
      raise FileNotFoundError(
          f'{dataset}.{role}: {wd}/results.json not found; train that run first (see '
          f'{DEFAULT_SPEC}) or point --spec.{dataset}.{role} at a finished run.')
    loaded[role], ds_m = load_model(role, wd)
    if ds is None:
      ds = ds_m
    elif ds_m.info.get('name') != ds.info.get('name') or len(ds_m.y_test) != len(ds.y_test):
      raise ValueError(f'{dataset}.{role} ({wd}) was trained on {ds_m.info.get("name")}, '
                       f'not {ds.info.get("name")}.')
  if 'standard' not in loaded:
    raise ValueError(f'{dataset}: the spec names no standard model.')
  return ({r: m for r, m in loaded.items() if r != 'independent'},
          loaded.get('independent'), ds)


def _model_record(m: Model) -> dict:
  return {'workdir': m.workdir, 'train_attack': m.results.get('train_attack'),
          **figure_runs.run_record(m.results)}


def _round(a: np.ndarray) -> list:
  return np.round(np.asarray(a, np.float64), 4).tolist()


def gradients_experiment(spec, dataset: str) -> dict:
  t0 = time.time()
  models_, _, ds = _panel_models(spec, dataset)
  y_all = ds.y_test
  show = first_of_each_class(y_all, ds.num_classes)
  m = min(int(spec.num_eval_examples), len(y_all))
  # Only the images used are decoded (a streamed test set is not held whole).
  x_m, x_show = data.to_float(ds.x_test[:m]), data.to_float(ds.x_test[show])
  out = {}
  for role, model in models_.items():
    g = input_gradients(model, x_m, y_all[:m])
    g_show = input_gradients(model, x_show, y_all[show])
    out[role] = {'model': _model_record(model), 'alignment': alignment_scores(g, x_m),
                 'gradients': _round(g_show)}
    logging.info('%s %s: alignment %s', dataset, role, out[role]['alignment'])
  return {'experiment': 'gradients', 'figure': '2', 'dataset': dataset,
          'spec': spec.to_dict(), 'num_eval_examples': m, 'image_indices': show.tolist(),
          'images': _round(x_show), 'labels': y_all[show].tolist(),
          'class_names': ds.info.get('class_names'), 'models': out,
          **common.provenance_record(t0)}


def _threats(spec, dataset: str, models_: dict) -> list[tuple[str, float, str]]:
  panel = spec[dataset]
  return [(norm, float(panel[f'large_eps_{norm}']), f'robust_{norm}')
          for norm in ('l2', 'linf') if f'robust_{norm}' in models_]


def adversarial_experiment(spec, dataset: str) -> dict:
  t0 = time.time()
  models_, independent, ds = _panel_models(spec, dataset, ROLES + ('independent',))
  if independent is None:
    raise ValueError(f'{dataset}: the adversarial numbers need an independently trained '
                     f'standard model (spec entry {dataset}.independent).')
  y_all = ds.y_test
  m = min(int(spec.num_eval_examples), len(y_all))
  show = first_of_each_class(y_all, ds.num_classes)
  idx = np.concatenate([show, np.setdiff1d(np.arange(m), show)])  # shown images first
  x, y = data.to_float(ds.x_test[idx]), y_all[idx]
  targets = random_targets(y, ds.num_classes, int(spec.seed))
  independent_clean = float(np.mean(predict(independent, x) == y))
  threats = []
  for norm, eps, robust_role in _threats(spec, dataset, models_):
    atk = large_eps_attack(norm, eps, spec, ds.bounds)
    per_model = {}
    for role in ('standard', robust_role):
      adv = targeted_examples(models_[role], atk, x, targets)
      pred = predict(models_[role], adv)
      pred_ind = predict(independent, adv)
      per_model[role] = {
          'model': _model_record(models_[role]),
          'clean_accuracy_on_these': float(np.mean(predict(models_[role], x) == y)),
          'target_success': float(np.mean(pred == targets)),
          'independent_says_target': float(np.mean(pred_ind == targets)),
          # among the examples that fooled the attacked model into the target
          'independent_says_target_given_success': float(
              np.mean(pred_ind[pred == targets] == targets[pred == targets])
              if np.any(pred == targets) else np.nan),
          'independent_says_true_class': float(np.mean(pred_ind == y)),
          'mean_perturbation_norm': float(np.mean(np.linalg.norm(
              (adv - x).reshape(len(x), -1), ord=2 if norm == 'l2' else np.inf, axis=1))),
          'shown_adversarial': _round(adv[:len(show)]),
          'shown_predictions': pred[:len(show)].tolist()}
      logging.info('%s %s ε=%g vs %s: target success %.3f, independent says target %.3f',
                   dataset, norm, eps, role, per_model[role]['target_success'],
                   per_model[role]['independent_says_target'])
    threats.append({'norm': norm, 'eps': eps, 'attack': atk.describe(), 'targeted': True,
                    'robust_role': robust_role, 'models': per_model})
  return {'experiment': 'adversarial', 'figure': '3', 'dataset': dataset,
          'spec': spec.to_dict(), 'num_examples': m, 'targets_seed': int(spec.seed),
          'independent': {**_model_record(independent), 'clean_accuracy_on_these':
                          independent_clean},
          'image_indices': show.tolist(), 'images': _round(x[:len(show)]),
          'labels': y[:len(show)].tolist(), 'targets': targets[:len(show)].tolist(),
          'class_names': ds.info.get('class_names'), 'threats': threats,
          **common.provenance_record(t0)}


def interpolation_experiment(spec, dataset: str) -> dict:
  t0 = time.time()
  models_, _, ds = _panel_models(spec, dataset)
  threats = _threats(spec, dataset, models_)
  if not threats:
    raise ValueError(f'{dataset}: interpolation needs a robust model (robust_l2 or robust_linf).')
  norm, eps, role = threats[0]   # ℓ2 when there is an ℓ2-robust model, as in the paper
  model = models_[role]
  y_all = ds.y_test
  show = first_of_each_class(y_all, ds.num_classes)[:int(spec.interpolation_images)]
  x, y = data.to_float(ds.x_test[show]), y_all[show]
  targets = random_targets(y, ds.num_classes, int(spec.seed))
  atk = large_eps_attack(norm, eps, spec, ds.bounds)
  adv = targeted_examples(model, atk, x, targets)
  rows = []
  for i in range(len(show)):
    path = images.interpolate(x[i], adv[i], int(spec.interpolation_points))
    probs = np.asarray(jax.nn.softmax(model.logits(jnp.asarray(path))))
    rows.append({'index': int(show[i]), 'label': int(y[i]), 'target': int(targets[i]),
                 'path': _round(path), 'p_target': _round(probs[:, targets[i]]),
                 'predictions': probs.argmax(1).tolist()})
  return {'experiment': 'interpolation', 'figure': '4', 'dataset': dataset,
          'spec': spec.to_dict(), 'norm': norm, 'eps': eps, 'attack': atk.describe(),
          'model': {'role': role, **_model_record(model)},
          'class_names': ds.info.get('class_names'), 'rows': rows,
          **common.provenance_record(t0)}


# ---------------------------------------------------------------------------
# Plots.


def _show(ax, img, title=None, fontsize=7):
  img = np.asarray(img)
  if img.ndim == 3 and img.shape[-1] == 1:
    ax.imshow(img[..., 0], cmap='gray', vmin=0, vmax=1)
  else:
    ax.imshow(np.clip(img, 0, 1))
  ax.set_xticks([])
  ax.set_yticks([])
  if title is not None:
    ax.set_title(title, fontsize=fontsize)


def _class_name(res: dict, k: int) -> str:
  names = res.get('class_names')
  return names[k] if names else str(k)


def _role_label(role: str, rec: dict) -> str:
  eps = (rec['model'].get('train_attack') or {}).get('eps', 0.0)
  return {'standard': 'standard', 'robust_linf': f'robust ℓ∞ (ε={common.fmt_eps(eps)})',
          'robust_l2': f'robust ℓ2 (ε={common.fmt_eps(eps)})'}[role]


def plot_gradients(res: dict, path: str) -> str:
  roles = list(res['models'])
  n = len(res['labels'])
  fig, axes = common.subplots(1 + len(roles), n, figsize=(1.3 * n, 1.45 * (1 + len(roles))))
  for j in range(n):
    _show(axes[0, j], res['images'][j], _class_name(res, res['labels'][j]))
    for i, role in enumerate(roles, start=1):
      _show(axes[i, j], gradient_image(res['models'][role]['gradients'][j]))
  for i, role in enumerate(roles, start=1):
    rec = res['models'][role]
    axes[i, 0].set_ylabel(f"{_role_label(role, rec)}\nalign {rec['alignment']['abs_pearson']:.2f}",
                          fontsize=7)
  axes[0, 0].set_ylabel('input', fontsize=7)
  one_channel = np.asarray(res['images']).shape[-1] == 1
  shown = 'red +, blue −' if one_channel else 'each image ±3σ rescaled to [0, 1]'
  fig.suptitle(f"{res['dataset']}: ∇ₓ loss ({shown}); align = mean |Pearson(∇ₓ, x)| "
               f"over {res['num_eval_examples']} test images", fontsize=9)
  return common.save_figure(fig, path)


def plot_adversarial(res: dict, path: str) -> str:
  n = len(res['labels'])
  rows = 1 + 2 * len(res['threats'])
  fig, axes = common.subplots(rows, n, figsize=(1.3 * n, 1.5 * rows), squeeze=False)
  for j in range(n):
    _show(axes[0, j], res['images'][j], f"{_class_name(res, res['labels'][j])} → "
          f"{_class_name(res, res['targets'][j])}")
  axes[0, 0].set_ylabel('input → target', fontsize=7)
  r = 1
  for t in res['threats']:
    for role, rec in t['models'].items():
      for j in range(n):
        _show(axes[r, j], rec['shown_adversarial'][j],
              f"pred {_class_name(res, rec['shown_predictions'][j])}")
      axes[r, 0].set_ylabel(f"{_role_label(role, rec)}\n"
                            f"{t['norm']} ε={common.fmt_eps(t['eps'])}\n"
                            f"indep.→target {rec['independent_says_target']:.0%}", fontsize=7)
      r += 1
  fig.suptitle(f"{res['dataset']}: targeted large-ε adversarial examples (PGD-"
               f"{res['threats'][0]['attack']['num_steps']}, no random start); "
               f"'indep.→target': share of {res['num_examples']} that an independently "
               f"trained standard model labels as the target", fontsize=9)
  return common.save_figure(fig, path)


def plot_interpolation(res: dict, path: str) -> str:
  rows = res['rows']
  k = len(rows[0]['path'])
  fig, axes = common.subplots(len(rows), k, figsize=(0.75 * k, 0.95 * len(rows)), squeeze=False)
  for i, row in enumerate(rows):
    for j in range(k):
      _show(axes[i, j], row['path'][j], f"{row['p_target'][j]:.2f}", fontsize=6)
    axes[i, 0].set_ylabel(f"{_class_name(res, row['label'])}→"
                          f"{_class_name(res, row['target'])}", fontsize=7)
  fig.suptitle(f"{res['dataset']}: from x to its {res['norm']} ε={common.fmt_eps(res['eps'])} "
               f"targeted adversarial example against the {res['model']['role']} model "
               f"(titles: its p(target))", fontsize=9)
  return common.save_figure(fig, path)


EXPERIMENTS = {'gradients': (gradients_experiment, plot_gradients),
               'adversarial': (adversarial_experiment, plot_adversarial),
               'interpolation': (interpolation_experiment, plot_interpolation)}


def run(command: str, spec, datasets: list[str], results_dir: str, figures_dir: str,
        plot_only: bool) -> list[str]:
  experiment, plot = EXPERIMENTS[command]
  spec = specs.load_spec(spec)
  paths = []
  for dataset in datasets:
    path = os.path.join(results_dir, f'{command}_{dataset}.json')
    if not plot_only:
      common.write_json(path, experiment(spec, dataset))
      jax.clear_caches()
    paths.append(plot(common.read_json(path), os.path.join(figures_dir,
                                                           f'{command}_{dataset}.png')))
  return paths
