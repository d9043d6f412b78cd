"""Auto-PGD (Croce & Hein, ICML 2020, Algorithm 1) for ℓ∞ and ℓ2 balls.

APGD is PGD without a step size to tune: it starts at η = 2ε, moves with
momentum 0.75, and at checkpoints w_j halves the step of an example and
restarts it from its best point so far when (1) its loss increased in at most
ρ = 0.75 of the steps since the last checkpoint, or (2) its step was not
halved at the last checkpoint and its best loss has not improved since. The
checkpoints follow the paper: the first after 22 % of the iterations, each later
window 3 % shorter, none shorter than 6 %. The schedule is the reference
implementation's (fra31/auto-attack, autopgd_base.py) to the step: the initial
point plus `num_steps` gradient steps (num_steps + 1 gradient evaluations), the
first step without momentum, every checkpoint that ends within the run, (2)
off at the first checkpoint, and after a restart the momentum's last move is
the one from the start of the step, not zero.

Losses: 'ce' (cross-entropy), 'dlr' (the difference-of-logits ratio,
−(z_y − max_{i≠y} z_i)/(z_π1 − z_π3), invariant to shifting and scaling the
logits) and, with `targets` = k > 0, APGD-T: targeted DLR
−(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2) towards each of the k classes ranked
highest after the prediction on x, one run per target. DLR needs at least 3
classes (4 for the targeted form).

Bookkeeping is per example: the first iterate the model misclassifies is kept
(an attack that succeeds once has succeeded), else the iterate of highest loss;
restarts and targets run one after another and keep the first success.
The output is not differentiated (`lax.stop_gradient`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from tradeoff import errors
from tradeoff import objectives
from tradeoff import registry
from tradeoff.attacks import ball

LOSSES = ('ce', 'dlr')
MOMENTUM = 0.75
RHO = 0.75


def checkpoints(num_steps: int) -> list[int]:
  """After how many steps APGD checks its step size (Croce & Hein 2020, §3.2): the
  first after 22 % of the steps, each later window 3 % shorter, none shorter than
  6 %, as long as it ends within the run (the reference implementation's counter;
  with 100 steps: 22, 41, 57, 70, 80, 87, 93, 99)."""
  first = max(int(0.22 * num_steps), 1)
  shrink, smallest = max(int(0.03 * num_steps), 1), max(int(0.06 * num_steps), 1)
  out, k, window = [], 0, first
  while k + window <= num_steps:
    k += window
    out.append(k)
    window = max(window - shrink, smallest)
  return out


def dlr(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Untargeted DLR loss f32[B] (larger: closer to misclassified)."""
  s = jnp.sort(logits, axis=-1)[:, ::-1]
  # −(z_y − max_{i≠y} z_i) is the Carlini-Wagner margin.
  return objectives.margin(logits, y) / (s[:, 0] - s[:, 2] + 1e-12)


def targeted_dlr(logits: jax.Array, y: jax.Array, t: jax.Array) -> jax.Array:
  """Targeted DLR loss f32[B] towards class t (larger: closer to t)."""
  s = jnp.sort(logits, axis=-1)[:, ::-1]
  z_y = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
  z_t = jnp.take_along_axis(logits, t[:, None], axis=-1)[:, 0]
  return -(z_y - z_t) / (s[:, 0] - 0.5 * (s[:, 2] + s[:, 3]) + 1e-12)


@dataclasses.dataclass(frozen=True)
class APGD:
  """A configured Auto-PGD attack; hashable, so it can be bound into jitted steps.

  Attributes:
    norm: 'linf' or 'l2'.
    eps: radius of the threat model; 0 disables the attack.
    num_steps: iterations (gradient evaluations) per run, 100 in AutoAttack.
    restarts: runs from independent random starts (AutoAttack standard: 1).
    loss: 'ce' or 'dlr' (untargeted); ignored when targets > 0.
    targets: 0 for the untargeted attack; k > 0 for APGD-T over the k classes
      ranked highest after the prediction on x (AutoAttack: 9).
    bounds: (lo, hi) input box, or None for unbounded features.
  """
  norm: str = 'linf'
  eps: float = 0.0
  num_steps: int = 100
  restarts: int = 1
  loss: str = 'ce'
  targets: int = 0
  bounds: tuple[float, float] | None = (0.0, 1.0)

  def __post_init__(self):
    registry.check_choice('attack norm', self.norm, ('linf', 'l2'))
    registry.check_choice('APGD loss', self.loss, LOSSES)
    registry.check_at_least('APGD', eps=(self.eps, 0), num_steps=(self.num_steps, 2),
                            restarts=(self.restarts, 1), targets=(self.targets, 0))

  @property
  def name(self) -> str:
    return f'apgd_t{self.targets}' if self.targets else f'apgd_{self.loss}'

  def describe(self) -> dict:
    """The attack as plain data, for results.json."""
    d = dataclasses.asdict(self)
    d['bounds'] = None if self.bounds is None else list(self.bounds)
    d.update(name=self.name if self.eps > 0 else 'none', momentum=MOMENTUM, rho=RHO,
             initial_step=2 * self.eps, checkpoints=checkpoints(self.num_steps))
    return d

  def per_target(self) -> tuple[APGD, int] | None:
    """APGD-T as (the attack on one target, how many): a cascade runs the targets
    in turn on the points still robust, passing `first_target` = 0, 1, ... to one
    compiled attack. None for the untargeted attack."""
    if not self.targets:
      return None
    return dataclasses.replace(self, targets=1), self.targets

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array, first_target=0) -> jax.Array:
    """Adversarial examples: f32 like x, ‖x_adv − x‖ ≤ eps, inside bounds.

    Args:
      logits_fn: x f32[B, ...] -> logits f32[B, K]; the model in inference mode.
      x: f32[B, ...] clean inputs inside `bounds`.
      y: i32[B] true labels.
      rng: PRNG key for the random starts.
      first_target: APGD-T skips this many more of the ranked targets (may be
        traced, so one compilation serves every target).
    """
    if self.eps <= 0:
      return x
    num_classes = jax.eval_shape(logits_fn, x).shape[-1]
    needed = 4 if self.targets else 3 if self.loss == 'dlr' else 2
    if num_classes < needed:
      raise errors.UserError(f'{self.name} needs at least {needed} classes; the model has '
                             f'{num_classes}.')
    if self.targets:
      ranked = jnp.argsort(-logits_fn(x), axis=-1)
      if self.targets > num_classes - 1:
        raise errors.UserError(f'APGD-T with targets={self.targets}: the model has only '
                               f'{num_classes - 1} other classes.')
      runs = [(r, jnp.take(ranked, first_target + t, axis=1)) for t in range(1, self.targets + 1)
              for r in range(self.restarts)]
    else:
      runs = [(r, None) for r in range(self.restarts)]
    found = jnp.zeros(x.shape[0], bool)
    best_x, best_loss = x, jnp.full(x.shape[0], -jnp.inf)
    for i, (r, target) in enumerate(runs):
      loss_fn = self._loss(y, target)
      x_run, success, loss = _apgd(loss_fn, logits_fn, x, y,
                                   jax.random.fold_in(rng, i if target is None else r), self)
      take = (~found & success) | (~found & ~success & (loss > best_loss))
      shape = (-1,) + (1,) * (x.ndim - 1)
      best_x = jnp.where(take.reshape(shape), x_run, best_x)
      best_loss = jnp.where(take, loss, best_loss)
      found = found | success
    return jax.lax.stop_gradient(best_x)

  def _loss(self, y, target):
    """logits -> per-example loss."""
    if target is not None:
      return lambda z: targeted_dlr(z, y, target)
    if self.loss == 'dlr':
      return lambda z: dlr(z, y)
    return lambda z: objectives.cross_entropy(z, y)


def _apgd(loss_fn, logits_fn, x, y, rng, atk: APGD):
  """One APGD run: (x_adv, success bool[B], loss of x_adv f32[B])."""
  n, shape = x.shape[0], (-1,) + (1,) * (x.ndim - 1)

  def total(z):
    logits = logits_fn(z)
    losses = loss_fn(logits)
    return jnp.sum(losses), (losses, logits)

  grad_fn = jax.grad(total, has_aux=True)

  def evaluate(z):
    # Per-example losses, their gradients and predictions in one forward and
    # one backward pass: the loss is a sum over examples, so its gradient
    # holds each example's own gradient.
    g, (losses, logits) = grad_fn(z)
    return losses, g, jnp.argmax(logits, -1) != y

  def proj(z):
    return ball.project(z, x, atk.norm, atk.eps, atk.bounds)

  # window[i] > 0: a checkpoint after step i (0-based) closes a window of that many steps.
  window = np.zeros(max(atk.num_steps, 1), np.int32)
  last = 0
  for k in checkpoints(atk.num_steps):
    window[k - 1], last = k - last, k
  window = jnp.asarray(window)

  x0 = proj(ball.random_start(rng, x, atk.norm, atk.eps))
  f0, g0, s0 = evaluate(x0)
  state = {
      'x': x0, 'x_prev': x0, 'g': g0, 'x_best': x0, 'f_best': f0, 'g_best': g0,
      'x_adv': x0, 'found': s0, 'eta': jnp.full((n,), 2.0 * atk.eps),
      # The loss of the previous step's iterate, for counting increases. Before the
      # first step the reference compares with an unwritten entry of its loss
      # history, i.e. with 0.
      'f_last': jnp.zeros(n), 'count': jnp.zeros(n, jnp.int32),
      'f_best_last': f0,
      # "Not halved at the last checkpoint" is false at the first one.
      'reduced_last': jnp.ones(n, bool)}

  def body(i, st):
    # The first step has no momentum; later ones move 0.75 of the way to the
    # projected gradient step plus 0.25 of the last move.
    a = jnp.where(i > 0, MOMENTUM, 1.0)
    z = proj(ball.step(st['x'], st['g'], atk.norm, st['eta'].reshape(shape)))
    x_new = proj(st['x'] + a * (z - st['x']) + (1 - a) * (st['x'] - st['x_prev']))
    f_new, g_new, s_new = evaluate(x_new)
    first_success = s_new & ~st['found']
    x_adv = jnp.where(first_success.reshape(shape), x_new, st['x_adv'])
    count = st['count'] + (f_new > st['f_last']).astype(jnp.int32)
    improved = f_new > st['f_best']
    x_best = jnp.where(improved.reshape(shape), x_new, st['x_best'])
    g_best = jnp.where(improved.reshape(shape), g_new, st['g_best'])
    f_best = jnp.maximum(f_new, st['f_best'])
    # At a checkpoint: halve the step and go on from the best point where the
    # loss rose in at most ρ of the window's steps, or where the step was not
    # halved last time and the best loss has not improved since.
    w = window[i]
    at_ckpt = w > 0
    oscillating = count <= RHO * w
    stalled = ~st['reduced_last'] & (st['f_best_last'] >= f_best)
    reduce = at_ckpt & (oscillating | stalled)
    return {
        'x': jnp.where(reduce.reshape(shape), x_best, x_new),
        # the momentum's last move stays the one from this step's start point
        'x_prev': st['x'],
        'g': jnp.where(reduce.reshape(shape), g_best, g_new),
        'x_best': x_best, 'f_best': f_best, 'g_best': g_best,
        'x_adv': x_adv, 'found': st['found'] | s_new,
        'eta': jnp.where(reduce, st['eta'] / 2, st['eta']),
        'f_last': f_new, 'count': jnp.where(at_ckpt, 0, count),
        'f_best_last': jnp.where(at_ckpt, f_best, st['f_best_last']),
        'reduced_last': jnp.where(at_ckpt, reduce, st['reduced_last'])}

  st = jax.lax.fori_loop(0, atk.num_steps, body, state)
  out = jnp.where(st['found'].reshape(shape), st['x_adv'], st['x_best'])
  return out, st['found'], st['f_best']
