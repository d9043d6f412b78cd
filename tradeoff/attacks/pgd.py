"""Projected gradient descent (Madry et al., 2018) for ℓ∞ and ℓ2 balls.

An attack is built from three small pure functions of ball.py: `random_start`
(in the ball), `step` (sign step for ℓ∞, normalised-gradient step for ℓ2) and
`project` (onto the ball ∩ the input box), run by a `lax.fori_loop`. FGSM is
PGD with one step of size ε and no random start.

The attack's output is wrapped in `lax.stop_gradient`: by Danskin's theorem
∇θ max_δ L(x + δ; θ) = ∇θ L(x + δ*; θ), with δ* held constant, so the training
step must not differentiate through the loop (see losses.py).

All attacks keep ‖x_adv - x‖ ≤ ε and x_adv inside `bounds` (for images [0, 1]).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections

from tradeoff import errors
from tradeoff import models
from tradeoff import objectives
from tradeoff import registry
from tradeoff.attacks import ball

NORMS = ('linf', 'l2')
ATTACK_LOSSES = {'ce': objectives.cross_entropy, 'margin': objectives.margin}

# objective(x_adv) -> (value f32[B] to maximise, success bool[B]).
Objective = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Attack:
  """A configured PGD attack; hashable, so it can be bound into jitted steps.

  Attributes:
    norm: 'linf' or 'l2'.
    eps: radius of the threat model; 0 disables the attack.
    num_steps: PGD iterations (1 with step_size = eps and no random start is FGSM).
    step_size: size of each step (per-coordinate for ℓ∞, Euclidean for ℓ2).
    restarts: independent random starts; per input the worst result is kept
      (a successful attack first, then the larger objective).
    random_start: start uniformly in the ball instead of at x.
    loss: 'ce' (cross-entropy) or 'margin' (Carlini-Wagner), the objective of
      the default `__call__`.
    bounds: (lo, hi) input box, or None for unbounded features.
    unroll: unrolling of the step loop; True unrolls fully (fast on CPU, where
      a rolled loop costs a fixed overhead per iteration), an int partially.
    scale: multiplies eps and step_size; may be a traced value, so a training
      step can ramp ε up without recompiling (see train.eps_scale).
  """
  norm: str = 'linf'
  eps: float = 0.0
  num_steps: int = 0
  step_size: float = 0.0
  restarts: int = 1
  random_start: bool = True
  loss: str = 'ce'
  bounds: tuple[float, float] | None = (0.0, 1.0)
  unroll: bool | int = True
  scale: Any = 1.0

  def __post_init__(self):
    registry.check_choice('attack norm', self.norm, NORMS)
    registry.check_choice('attack loss', self.loss, sorted(ATTACK_LOSSES))
    if self.eps < 0 or self.num_steps < 0 or self.restarts < 1:
      raise errors.UserError(f'Attack needs eps >= 0, num_steps >= 0, restarts >= 1; got '
                       f'eps={self.eps}, num_steps={self.num_steps}, restarts={self.restarts}.')
    if self.eps > 0 and self.num_steps > 0 and self.step_size <= 0:
      raise errors.UserError(f'Attack step_size={self.step_size} must be > 0 when eps > 0.')
    reach = self.num_steps * self.step_size
    if self.eps > 0 and self.num_steps > 0 and reach < self.eps * (1 - 1e-6):
      # Such an attack cannot move from x (or from its random start) to the
      # edge of the ball, so it reports a robust accuracy that is too high.
      raise errors.UserError(
          f'Attack cannot reach the edge of its ball: num_steps={self.num_steps} × '
          f'step_size={self.step_size:g} = {reach:g} < eps={self.eps:g}. Leave step_size '
          f'unset (step = step_scale·ε/num_steps, step_scale 2.5 by default) or raise '
          f'num_steps or step_size.')

  @classmethod
  def from_config(cls, cfg: ml_collections.ConfigDict,
                  bounds: tuple[float, float] | None) -> 'Attack':
    """Builds from a config.attack / config.eval_attack block."""
    return cls(norm=cfg.norm, eps=float(cfg.eps), num_steps=int(cfg.num_steps),
               step_size=float(cfg.step_size), restarts=int(cfg.restarts),
               random_start=bool(cfg.random_start), loss=cfg.loss,
               bounds=None if bounds is None else tuple(bounds), unroll=cfg.unroll)

  @property
  def active(self) -> bool:
    return self.eps > 0 and (self.num_steps > 0 or self.random_start)

  def describe(self) -> dict:
    """The attack as plain data, for results.json."""
    d = dataclasses.asdict(self)
    del d['scale']
    d['bounds'] = None if self.bounds is None else list(self.bounds)
    d['name'] = 'none' if not self.active else (
        'fgsm' if self.num_steps == 1 and not self.random_start else f'pgd{self.num_steps}')
    return d

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array, targeted: bool = False) -> jax.Array:
    """Adversarial examples against a classifier.

    Args:
      logits_fn: x f32[B, ...] -> logits f32[B, K]; the model in inference mode.
      x: f32[B, ...] clean inputs inside `bounds`.
      y: i32[B] true labels, or target labels if `targeted`.
      rng: PRNG key for the random starts.
      targeted: move towards class y instead of away from it.

    Returns:
      x_adv like x, with ‖x_adv - x‖ ≤ eps, inside bounds, not differentiated.
    """
    return self.perturb(label_objective(logits_fn, y, self.loss, targeted), x, rng)

  def perturb(self, objective: Objective, x: jax.Array, rng: jax.Array) -> jax.Array:
    """Maximises a general per-example `objective` over the ball around x."""
    if not self.active:
      return x
    return jax.lax.stop_gradient(_pgd(objective, x, rng, self))


def label_objective(logits_fn, y, loss: str = 'ce', targeted: bool = False) -> Objective:
  """The usual attack objective: raise the loss of y (or lower it, if targeted)."""
  loss_fn = ATTACK_LOSSES[loss]

  def objective(x_adv):
    logits = logits_fn(x_adv)
    value = loss_fn(logits, y)
    pred = models.predict(logits)
    return (-value, pred == y) if targeted else (value, pred != y)

  return objective


def _pgd(objective: Objective, x: jax.Array, rng: jax.Array, atk: Attack) -> jax.Array:
  grad_fn = jax.grad(lambda z: jnp.sum(objective(z)[0]))
  eps, step_size = atk.eps * atk.scale, atk.step_size * atk.scale

  def one_run(key):
    x_adv = ball.project(ball.random_start(key, x, atk.norm, eps, atk.random_start), x,
                           atk.norm, eps, atk.bounds)

    def body(_, x_adv):
      x_adv = ball.step(x_adv, grad_fn(x_adv), atk.norm, step_size)
      return ball.project(x_adv, x, atk.norm, eps, atk.bounds)

    return jax.lax.fori_loop(0, atk.num_steps, body, x_adv, unroll=atk.unroll)

  if atk.restarts == 1:
    return one_run(rng)
  # Restarts run side by side (vmap folds them into the batch), which keeps
  # the PGD loop on XLA's fast path; a loop over restarts was ~2.5× slower.
  runs = jax.vmap(lambda r: one_run(jax.random.fold_in(rng, r)))(jnp.arange(atk.restarts))
  values, successes = jax.vmap(objective)(runs)  # [restarts, B]
  # Worst case per input: a successful attack if any, then the largest objective.
  eligible = successes | ~successes.any(axis=0, keepdims=True)
  best = jnp.argmax(jnp.where(eligible, values, -jnp.inf), axis=0)
  return jnp.take_along_axis(runs, best.reshape((1, -1) + (1,) * (x.ndim - 1)), axis=0)[0]


def fgsm(norm: str, eps: float, bounds=(0.0, 1.0), loss: str = 'ce') -> Attack:
  """The fast gradient (sign) method: one step of size ε from x."""
  return Attack(norm=norm, eps=eps, num_steps=1, step_size=eps, restarts=1,
                random_start=False, loss=loss, bounds=bounds)

