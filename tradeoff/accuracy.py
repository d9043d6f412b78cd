"""Clean and robust accuracy of a model over a test set, on all local devices.

A test point counts as robust only if the model is right on x *and* on the
attack's output: x itself lies in the threat ball, so a misclassified x is
never robust, whatever the attack returns. Sums and counts are accumulated
with a mask, so a short last batch counts exactly.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tradeoff import attacks
from tradeoff import data
from tradeoff import errors
from tradeoff import models
from tradeoff import objectives
from tradeoff import parallel
from tradeoff import stats
from tradeoff import workdir as workdir_lib

AXIS = parallel.AXIS


def make_eval_step(module: nn.Module, attack: attacks.Attack) -> Callable:
  """pmapped (params, model_state, sharded batch, rng) -> summed counts."""

  def eval_step(params, model_state, batch, rng):
    rng = jax.random.fold_in(rng, jax.lax.axis_index(AXIS))
    logits_fn = lambda x: models.apply(module, params, model_state, x, train=False)[0]
    x, y, mask = batch['image'], batch['label'], batch['mask']
    clean_logits = logits_fn(x)
    clean_ok = models.predict(clean_logits) == y
    x_adv = attack(logits_fn, x, y, rng)
    adv_logits = logits_fn(x_adv)
    robust_ok = clean_ok & (models.predict(adv_logits) == y)
    sums = {'count': jnp.sum(mask),
            'clean_correct': jnp.sum(clean_ok * mask),
            'robust_correct': jnp.sum(robust_ok * mask),
            'clean_loss': jnp.sum(objectives.cross_entropy(clean_logits, y) * mask),
            'adv_loss': jnp.sum(objectives.cross_entropy(adv_logits, y) * mask)}
    return jax.lax.psum(sums, AXIS)

  return jax.pmap(eval_step, axis_name=AXIS, in_axes=(0, 0, 0, None))


# evaluate waits for the device every this many batches.
SYNC_EVERY = 16


def evaluate(p_eval_step: Callable, params, model_state, x: np.ndarray, y: np.ndarray,
             batch_size: int, rng: jax.Array) -> dict[str, float]:
  """Runs a `make_eval_step` function over (x, y).

  Args:
    p_eval_step: from make_eval_step.
    params: replicated params (leading device axis).
    model_state: replicated model state.
    x: test inputs (u8 pixels or f32 features), all of which are evaluated.
    y: i32 labels.
    batch_size: global eval batch, a multiple of the local device count.
    rng: key for the attack's random starts; batch i uses fold_in(rng, i).

  Returns:
    clean_accuracy, robust_accuracy, clean_loss, adv_loss, num_examples.
  """
  num_devices = jax.local_device_count()
  parts = []
  # With several processes each attacks its slice of every batch; the psum adds
  # all devices of all processes, so every process gets the same totals. The
  # batches' sums stay on the devices and are added on the host at the end: an
  # operation per batch to add them there would cost more than a small model's
  # clean batch. Waiting for every SYNC_EVERY-th batch bounds the inputs queued.
  for i, batch in enumerate(data.eval_batches(x, y, batch_size, jax.process_index(),
                                              jax.process_count())):
    parts.append(p_eval_step(params, model_state, parallel.shard(batch, num_devices),
                             jax.random.fold_in(rng, i)))
    if i % SYNC_EVERY == SYNC_EVERY - 1:
      jax.block_until_ready(parts[-1])
  parts = jax.device_get(parts)
  totals = {k: float(sum(np.float64(p[k][0]) for p in parts)) for k in parts[0]}
  n = totals['count']
  return {'clean_accuracy': totals['clean_correct'] / n,
          'robust_accuracy': totals['robust_correct'] / n,
          'clean_loss': totals['clean_loss'] / n, 'adv_loss': totals['adv_loss'] / n,
          'num_examples': int(n)}


def evaluate_clean_and_robust(module: nn.Module, attack: attacks.Attack, params, model_state,
                              x: np.ndarray, y: np.ndarray, batch_size: int, rng: jax.Array,
                              num_robust: int = 0, steps=None,
                              progress: CascadeProgress | None = None) -> dict[str, float]:
  """Clean accuracy on all of (x, y), robust accuracy on its first num_robust examples.

  num_robust <= 0 (or >= len(y)) attacks every example in one pass. Otherwise
  the clean pass runs without the attack, and the robust numbers
  (robust_accuracy, adv_loss, robust_subset_clean_accuracy) come from the subset.

  `robust_time_s` is the attacked pass's wall time (compilation included); a
  cascade also records each stage's robust accuracy and time. Every accuracy
  comes with its 95 % Wilson interval over the points it was measured on
  (`<name>_ci95`, tradeoff.stats).

  Args:
    steps: optional (full_step, clean_step) from make_eval_step, to reuse their
      compilations across calls.
    progress: for a cascade, where to save its progress after every stage (or
      target), so that a killed evaluation resumes there; see CascadeProgress.
  """
  return stats.with_intervals(_evaluate_clean_and_robust(
      module, attack, params, model_state, x, y, batch_size, rng, num_robust, steps, progress))


def _evaluate_clean_and_robust(module, attack, params, model_state, x, y, batch_size, rng,
                               num_robust, steps, progress) -> dict:
  if isinstance(attack, attacks.Cascade):
    return _evaluate_cascade(module, attack, params, model_state, x, y, batch_size, rng,
                             num_robust, steps[1] if steps else None, progress)
  full_step, clean_step = steps or (make_eval_step(module, attack),
                                    make_eval_step(module, attacks.Attack()))
  n = len(y)
  if num_robust <= 0 or num_robust >= n:
    t0 = time.time()
    out = evaluate(full_step, params, model_state, x, y, batch_size, rng)
    out['robust_time_s'] = time.time() - t0   # with the clean pass it shares
    out['num_robust_examples'] = out['num_examples']
    return out
  clean = evaluate(clean_step, params, model_state, x, y, batch_size, rng)
  t0 = time.time()
  robust = evaluate(full_step, params, model_state, x[:num_robust], y[:num_robust],
                    batch_size, rng)
  return {'clean_accuracy': clean['clean_accuracy'], 'clean_loss': clean['clean_loss'],
          'num_examples': clean['num_examples'], 'robust_time_s': time.time() - t0,
          'robust_accuracy': robust['robust_accuracy'], 'adv_loss': robust['adv_loss'],
          'num_robust_examples': robust['num_examples'],
          'robust_subset_clean_accuracy': robust['clean_accuracy']}


def violation(x_adv: jax.Array, x: jax.Array, norm: str, eps: float, bounds) -> jax.Array:
  """f32[B]: how far each attack output lies outside the threat model: the excess
  of its ‖x_adv − x‖ over ε, or of x_adv over the input box, whichever is larger;
  inf for a non-finite output."""
  d = (x_adv - x).reshape(x.shape[0], -1)
  size = jnp.max(jnp.abs(d), -1) if norm == 'linf' else jnp.sqrt(jnp.sum(jnp.square(d), -1))
  out = jnp.maximum(size - eps, 0.0)
  if bounds is not None:
    flat = x_adv.reshape(x.shape[0], -1)
    out = jnp.maximum(out, jnp.max(jnp.maximum(bounds[0] - flat, flat - bounds[1]), -1))
  finite = jnp.all(jnp.isfinite(x_adv.reshape(x.shape[0], -1)), -1)
  return jnp.where(finite, jnp.maximum(out, 0.0), jnp.inf)


def make_robust_step(module: nn.Module, attack, targeted: bool = False) -> Callable:
  """pmapped (params, model_state, sharded batch, rng[, first_target]) ->
  (bool[devices, b], f32[devices, b]): whether the model is right on the attack's
  output (on x itself for attacks.Attack()), and how far that output lies outside
  the ball and the box (`violation`). With `targeted`, the step takes the attack's
  `first_target` as a traced argument, so one compilation serves every target of
  a targeted attack."""
  bounds = getattr(attack, 'bounds', None)
  if bounds is None and getattr(attack, 'stages', None):
    bounds = getattr(attack.stages[0], 'bounds', None)

  def robust_step(params, model_state, batch, rng, first_target=0):
    rng = jax.random.fold_in(rng, jax.lax.axis_index(AXIS))
    logits_fn = lambda x: models.apply(module, params, model_state, x, train=False)[0]
    if targeted:
      x_adv = attack(logits_fn, batch['image'], batch['label'], rng, first_target=first_target)
    else:
      x_adv = attack(logits_fn, batch['image'], batch['label'], rng)
    ok = models.predict(logits_fn(x_adv)) == batch['label']
    return ok, violation(x_adv, batch['image'], attack.norm, attack.eps, bounds)

  return jax.pmap(robust_step, axis_name=AXIS, in_axes=(0, 0, 0, None, None))


def _bucket(n: int, batch_size: int, num_devices: int) -> int:
  """The batch for n points: batch_size, or the smallest power of two (times the
  device count) that holds them, so a few remaining points are not padded to a
  full batch while the number of compiled shapes stays small."""
  size = num_devices
  while size < n and size < batch_size:
    size *= 2
  return min(size, batch_size)


# An attack output further than this outside the ball or the box is a bug (float32
# projections land within ~1e-7 of the edge).
VIOLATION_TOLERANCE = 1e-5


def robust_mask(p_robust_step: Callable, params, model_state, x: np.ndarray, y: np.ndarray,
                batch_size: int, rng: jax.Array, first_target: int = 0,
                with_violation: bool = False):
  """bool[len(y)] of a make_robust_step function over (x, y); with with_violation,
  (that, the largest violation of the threat model among the attack's outputs)."""
  num_devices, num_processes = jax.local_device_count(), jax.process_count()
  batch_size = _bucket(len(y), batch_size, num_devices * num_processes)
  out, worst = [], 0.0
  for i, batch in enumerate(data.eval_batches(x, y, batch_size, jax.process_index(),
                                              num_processes)):
    ok, viol = p_robust_step(params, model_state, parallel.shard(batch, num_devices),
                             jax.random.fold_in(rng, i), first_target)
    ok, viol = np.asarray(ok).reshape(-1), np.asarray(viol).reshape(-1)
    mask = batch['mask'] > 0
    if num_processes > 1:  # every process's slice, in batch order
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      ok, viol, mask = (np.asarray(a).reshape(-1) for a in multihost_utils.process_allgather(
          (ok, viol, mask)))
    out.append(ok[mask])
    if mask.any():
      worst = max(worst, float(viol[mask].max()))
  ok = np.concatenate(out) if out else np.zeros(0, bool)
  return (ok, worst) if with_violation else ok


class CascadeProgress:
  """Where a cascade evaluation stands, in a JSON file, so that a killed one goes
  on from its last finished part (a stage, or one target of a targeted stage)
  instead of from the start. Every part draws its random numbers from its own
  fold of the key, so the resumed evaluation gives the points the same answers
  as an uninterrupted one.

  `key` names what is evaluated (attack settings, checkpoint, points, seed, batch
  size); a file written for another key is ignored and replaced. The file is
  removed when the evaluation finishes. With several processes only process 0
  writes it; every process reads it (a shared filesystem, as for checkpoints).
  """

  def __init__(self, path: str, key: dict):
    self.path = path
    self.key = json.loads(json.dumps(key, default=str))   # as it reads back from the file

  def load(self, num_points: int) -> dict | None:
    """The saved progress, or None (no file, another evaluation's, or damaged: a
    damaged file is reported and the evaluation starts from the first stage)."""
    if not workdir_lib.exists(self.path):
      return None
    try:
      rec = json.loads(workdir_lib.read_text(self.path))
      if not isinstance(rec, dict) or not isinstance(rec.get('robust', ''), str):
        raise ValueError('not a progress record')
    except (ValueError, UnicodeDecodeError) as e:
      logging.warning('%s is damaged (%s); starting from the first stage', self.path, e)
      return None
    if rec.get('key') != self.key or len(rec.get('robust', '')) != num_points:
      logging.warning('%s belongs to another evaluation; starting from the first stage',
                      self.path)
      return None
    return rec

  def save(self, robust: np.ndarray, by_stage: list, stage: int, part: int,
           stage_time_s: float, attacked_points: int) -> None:
    """After part `part` - 1 of stage `stage` (or before stage `stage` when part
    is 0): the robust mask, the finished stages' records, and the running
    stage's time so far and number of points it started on."""
    if jax.process_index() != 0:
      return
    workdir_lib.write_json(self.path, {
        'key': self.key, 'robust': ''.join('1' if r else '0' for r in robust),
        'by_stage': by_stage, 'stage': stage, 'part': part,
        'stage_time_s': stage_time_s, 'attacked_points': attacked_points}, indent=None)

  def clear(self) -> None:
    if jax.process_index() == 0 and workdir_lib.exists(self.path):
      workdir_lib.remove(self.path)
      if not workdir_lib.is_url(self.path):
        try:
          os.rmdir(os.path.dirname(self.path))   # only if no other evaluation's file is there
        except OSError:
          pass


def model_checks(module: nn.Module, params, model_state, x: np.ndarray, y: np.ndarray,
                 targets: int = 0) -> dict:
  """The reference AutoAttack's checks of a model before it is attacked, and one of
  gradient masking, on a few test points (params unreplicated):

    deterministic     the same input twice gives the same logits (no randomness
                      in inference mode; an attack on a random model needs EOT)
    batch_independent an example's logits do not depend on the rest of its batch
                      (a dynamic model, e.g. BatchNorm with batch statistics)
    logits_not_probabilities  the outputs are not rows of a softmax (nonnegative,
                      summing to 1): the attacks' losses expect logits
    enough_classes    the model has more classes than targeted stages take targets
    zero_gradient_fraction  the fraction of points whose cross-entropy gradient
                      with respect to the input is exactly zero (masked or saturated)

  Returns the outcome of each and `warnings`, one line per failed check.
  """
  x = jnp.asarray(data.to_float(x))
  y = jnp.asarray(y)
  apply = jax.jit(lambda p, s, z: models.apply(module, p, s, z, False)[0])
  a, b = np.asarray(apply(params, model_state, x)), np.asarray(apply(params, model_state, x))
  alone = np.asarray(apply(params, model_state, x[:1]))
  scale = max(float(np.abs(a).max()), 1e-6)
  grads = np.asarray(jax.jit(jax.grad(lambda z: jnp.sum(objectives.cross_entropy(
      apply(params, model_state, z), y))))(x)).reshape(len(y), -1)
  k = num_classes(module)
  out = {
      'num_points': int(len(y)),
      'deterministic': bool(np.array_equal(a, b)),
      'batch_independent': bool(np.abs(alone[0] - a[0]).max() <= 1e-4 * scale),
      'logits_not_probabilities': not (a.shape[-1] > 1 and np.all(a >= 0) and
                                       np.allclose(a.sum(-1), 1.0, atol=1e-4)),
      'enough_classes': targets <= k - 1,
      'zero_gradient_fraction': float(np.mean(np.all(grads == 0, axis=1)))}
  said = {'deterministic': 'the model gives different outputs for the same input',
          'batch_independent': 'an example\'s outputs depend on the rest of its batch',
          'logits_not_probabilities': 'the outputs look like probabilities; the attacks '
                                      'expect logits',
          'enough_classes': f'{targets} targets but {k} classes; the targeted stages take '
                            f'{k - 1}'}
  out['warnings'] = [text for key, text in said.items() if not out[key]]
  if out['zero_gradient_fraction'] > 0:
    out['warnings'].append(f'{out["zero_gradient_fraction"]:.0%} of the checked points have a '
                           f'zero input gradient (gradient masking?)')
  return out


def masking_flags(result: dict) -> dict:
  """Signs of gradient masking in a cascade's record: points the black-box stage
  (Square) broke after every gradient stage had failed on them."""
  stages = result.get('robust_accuracy_by_stage', [])
  out = {}
  for before, st in zip(stages, stages[1:]):
    if st['attack'] == 'square':
      out['square_broke_after_gradient_stages'] = int(round(
          (before['robust_accuracy'] - st['robust_accuracy']) * result['num_robust_examples']))
  if out:
    out['possibly_gradient_masked'] = out['square_broke_after_gradient_stages'] > 0
  return out


def num_classes(module: nn.Module) -> int:
  """The classes a model tells apart: its outputs, or 2 for a single logit."""
  return max(int(module.num_outputs), 2)


def num_attacked(num_robust: int, num_examples: int) -> int:
  """How many of the first examples a cascade attacks: num_robust (all for <= 0)."""
  return num_examples if num_robust <= 0 else min(num_robust, num_examples)


def _evaluate_cascade(module, cascade, params, model_state, x, y, batch_size, rng,
                      num_robust, clean_step=None, progress: CascadeProgress | None = None
                      ) -> dict:
  """Clean accuracy on all of (x, y); each stage of `cascade` attacks only the
  points of the first num_robust that are still robust, and the robust accuracy
  after every stage is recorded (AutoAttack's protocol). With `progress`, the
  evaluation is saved after every part and resumed from there."""
  clean_step = clean_step or make_eval_step(module, attacks.Attack())
  clean = evaluate(clean_step, params, model_state, x, y, batch_size, rng)
  m = num_attacked(num_robust, len(y))
  xs, ys = x[:m], y[:m]
  robust = robust_mask(make_robust_step(module, attacks.Attack()), params, model_state, xs, ys,
                       batch_size, rng)
  subset_clean = float(robust.mean())
  by_stage = []
  start_stage, start_part, stage_time = 0, 0, 0.0
  saved = progress.load(m) if progress else None
  if saved:
    robust = np.array([c == '1' for c in saved['robust']])
    by_stage, stage_time = saved['by_stage'], saved['stage_time_s']
    start_stage, start_part = saved['stage'], saved['part']
    earlier = float(sum(st['wall_time_s'] for st in by_stage) + stage_time)
    logging.info('%s: resumed from %s at stage %d, part %d', cascade.name, progress.path,
                 start_stage + 1, start_part)
  t_start = time.time()
  max_violation = 0.0
  for i, stage in enumerate(cascade.stages):
    if i < start_stage:
      continue
    t0 = time.time() - (stage_time if i == start_stage else 0.0)
    # A targeted stage runs one target at a time, each on the points still robust.
    split = stage.per_target() if hasattr(stage, 'per_target') else None
    one, count = split or (stage, 1)
    if split is not None and count > num_classes(module) - 1:
      raise errors.UserError(
          f'{stage.describe()["name"]}: {count} targets, but the model has '
          f'{num_classes(module)} classes (at most {num_classes(module) - 1} targets); build '
          f'the attack with attacks.from_config(..., num_classes=...).')
    step = make_robust_step(module, one, targeted=split is not None)
    attacked = (saved['attacked_points'] if saved and i == start_stage and start_part
                else int(robust.sum()))
    for j in range(start_part if i == start_stage else 0, count):
      idx = np.flatnonzero(robust)
      if len(idx):
        ok, viol = robust_mask(step, params, model_state, xs[idx], ys[idx], batch_size,
                               jax.random.fold_in(jax.random.fold_in(rng, i + 1), j), j,
                               with_violation=True)
        if viol > VIOLATION_TOLERANCE:
          raise RuntimeError(f'{stage.describe()["name"]} returned a point {viol:.3g} outside '
                             f'the {cascade.norm} ball of radius {cascade.eps:g} or the input '
                             f'box (or not finite): the attack is broken; no result is written.')
        max_violation = max(max_violation, viol)
        robust[idx] = ok
      if progress and j + 1 < count:
        progress.save(robust, by_stage, i, j + 1, time.time() - t0, attacked)
    by_stage.append({'attack': stage.describe()['name'], 'robust_accuracy': float(robust.mean()),
                     'attacked_points': attacked, 'wall_time_s': time.time() - t0})
    if progress:
      progress.save(robust, by_stage, i + 1, 0, 0.0, 0)
    logging.info('%s stage %d/%d (%s): %d points attacked, robust accuracy %.4f, %.0f s',
                 cascade.name, i + 1, len(cascade.stages), by_stage[-1]['attack'], attacked,
                 by_stage[-1]['robust_accuracy'], by_stage[-1]['wall_time_s'])
  out = {'clean_accuracy': clean['clean_accuracy'], 'clean_loss': clean['clean_loss'],
         'num_examples': clean['num_examples'], 'robust_accuracy': float(robust.mean()),
         'num_robust_examples': m, 'robust_accuracy_by_stage': by_stage,
         # which of the attacked points stayed robust ('1') through every stage
         'robust_points': ''.join('1' if r else '0' for r in robust),
         'robust_time_s': time.time() - t_start,
         # of the stages run by this process (a resumed evaluation: since it resumed)
         'max_threat_model_violation': max_violation}
  if saved:   # the time of every stage, before and after the interruption
    out['robust_time_s'] = float(sum(st['wall_time_s'] for st in by_stage))
    out['resumed'] = {'stage': start_stage + 1, 'part': start_part, 'earlier_time_s': earlier}
  if m < len(y):
    out['robust_subset_clean_accuracy'] = subset_clean
  if progress:
    progress.clear()
  return out
