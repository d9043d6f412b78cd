"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein, ICML 2020), ℓ∞ and ℓ2.

FAB looks for the adversarial example of smallest norm. At each iteration it
linearises the boundary between the true class y and the target t around the
current iterate x_k (f = z_y − z_t, a hyperplane f(x_k) + ⟨∇f, z − x_k⟩ = 0),
computes the minimal-norm step onto that hyperplane inside the input box from
x_k (d₁) and from the original point x (d₂), and moves to a convex combination
of the two, overshooting by η = 1.05:

    x_{k+1} = clip((1 − α)(x_k + η d₁) + α(x + η d₂)),  α = min(‖d₁‖ / (‖d₁‖ + ‖d₂‖), α_max)

so it stays close to x (α_max = 0.1). Once x_{k+1} is misclassified it is kept
if its norm is the smallest found, and the iterate is pulled back towards x by
β = 0.9 (x + β(x_{k+1} − x)) to look for a closer one. Later restarts start from
a random point at half the best norm found so far (AutoAttack's FAB-T).

The targets are the classes ranked highest after the prediction on x, one run
each (AutoAttack: 9 targets, 100 iterations, 1 restart). As an ε-bounded attack
it returns, per example, its smallest adversarial example if that lies within ε
and x otherwise; `minimal` returns the smallest examples and their norms.

The projection is exact: the minimal ℓ∞ step that moves ⟨w, ·⟩ by c inside the
box is d_i = sign(w_i)·min(λ, room_i), the minimal ℓ2 step is
d_i = sign(w_i)·min(λ|w_i|, room_i) (room_i: how far coordinate i may move in
that direction), and λ comes from sorting the points where coordinates reach
the box (a piecewise-linear equation in λ).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from tradeoff import errors
from tradeoff import registry


def _norm(d: jax.Array, norm: str) -> jax.Array:
  """‖d_i‖ of each row of d f32[B, n]."""
  if norm == 'linf':
    return jnp.max(jnp.abs(d), axis=1)
  return jnp.sqrt(jnp.sum(jnp.square(d), axis=1))


def min_norm_step(t: jax.Array, w: jax.Array, c: jax.Array, norm: str,
                  lo: float, hi: float) -> jax.Array:
  """The step d of smallest ℓ∞ / ℓ2 norm with ⟨w, d⟩ = c and lo ≤ t + d ≤ hi, per row.

  Args:
    t: f32[B, n] points, inside [lo, hi].
    w: f32[B, n] hyperplane normals.
    c: f32[B] how far ⟨w, ·⟩ has to move.
    norm: 'linf' or 'l2'.
    lo, hi: the box (±inf for none).

  Returns:
    f32[B, n]. Where the box allows no such step, the step to the box's corner
    that moves ⟨w, ·⟩ the most towards c.
  """
  w = w * jnp.where(c < 0, -1.0, 1.0)[:, None]   # now ⟨w, d⟩ = |c| ≥ 0
  c = jnp.abs(c)
  aw = jnp.abs(w)
  v = (aw > 0).astype(w.dtype) if norm == 'linf' else aw   # |d_i| = min(λ v_i, room_i)
  room = jnp.where(w > 0, hi - t, t - lo)
  moves = v > 0
  breakpoint = jnp.where(moves, room / jnp.where(moves, v, 1.0), jnp.inf)
  saturated = jnp.where(moves, aw * room, 0.0)   # ⟨w, d⟩ of coordinate i at the box
  slope = aw * v                                 # d⟨w, d⟩/dλ of coordinate i inside it
  # One sort carries the three rows along (no argsort and gathers). Its order among
  # equal breakpoints does not matter: there sat = bp·sl, so `reached` is the same
  # for all of them and the first that reaches c has the same sums before it.
  bp, sat, sl = jax.lax.sort((breakpoint, saturated, slope), dimension=1, is_stable=False,
                             num_keys=1)
  # Exclusive / reverse cumulative sums without subtraction (rooms may be inf).
  before = jnp.cumsum(jnp.pad(sat[:, :-1], ((0, 0), (1, 0))), 1)   # coordinates at the box
  free = jnp.cumsum(sl[:, ::-1], 1)[:, ::-1]                       # those still inside
  reached = jnp.where(free > 0, before + bp * free, before)   # ⟨w, d⟩ at λ = bp
  enough = reached >= c[:, None]
  feasible = jnp.any(enough, 1)
  k = jnp.argmax(enough, 1)[:, None]
  a_k = jnp.take_along_axis(before, k, 1)[:, 0]
  f_k = jnp.take_along_axis(free, k, 1)[:, 0]
  lam = jnp.where(feasible & (f_k > 0), (c - a_k) / jnp.where(f_k > 0, f_k, 1.0), jnp.inf)
  lam = jnp.where(c > 0, lam, 0.0)
  size = jnp.minimum(lam[:, None] * v, room)
  return jnp.where(moves, jnp.sign(w) * size, 0.0)


@dataclasses.dataclass(frozen=True)
class FAB:
  """A configured FAB-T attack; hashable, so it can be bound into jitted steps.

  Attributes:
    norm: 'linf' or 'l2'.
    eps: radius of the threat model (only successes within it are returned);
      0 disables the attack.
    num_steps: iterations per target and restart (AutoAttack: 100).
    restarts: runs per target; the first from x, later ones from random points.
    targets: how many of the classes ranked highest after the prediction are
      attacked (AutoAttack: 9), one run each.
    alpha_max, eta, beta: the paper's step parameters (0.1, 1.05, 0.9).
    bounds: (lo, hi) input box, or None.
  """
  norm: str = 'linf'
  eps: float = 0.0
  num_steps: int = 100
  restarts: int = 1
  targets: int = 9
  alpha_max: float = 0.1
  eta: float = 1.05
  beta: float = 0.9
  bounds: tuple[float, float] | None = (0.0, 1.0)

  def __post_init__(self):
    registry.check_choice('attack norm', self.norm, ('linf', 'l2'))
    registry.check_at_least('FAB-T', eps=(self.eps, 0), num_steps=(self.num_steps, 1),
                            restarts=(self.restarts, 1), targets=(self.targets, 1))

  @property
  def name(self) -> str:
    return f'fab_t{self.targets}'

  def describe(self) -> dict:
    d = dataclasses.asdict(self)
    d['bounds'] = None if self.bounds is None else list(self.bounds)
    d['name'] = self.name if self.eps > 0 else 'none'
    return d

  def per_target(self) -> tuple[FAB, int]:
    """(the attack on one target, how many): a cascade runs the targets in turn on
    the points still robust, passing `first_target` = 0, 1, ... to one compiled attack."""
    return dataclasses.replace(self, targets=1), self.targets

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array, first_target=0) -> jax.Array:
    """The smallest adversarial example found where its norm is ≤ eps, else x.
    `first_target` skips that many more ranked targets (may be traced)."""
    if self.eps <= 0:
      return x
    x_adv, dist = self.minimal(logits_fn, x, y, rng, first_target)
    ok = (dist <= self.eps).reshape((-1,) + (1,) * (x.ndim - 1))
    return jax.lax.stop_gradient(jnp.where(ok, x_adv, x))

  def minimal(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
              y: jax.Array, rng: jax.Array, first_target=0) -> tuple[jax.Array, jax.Array]:
    """(smallest adversarial examples found, their norms f32[B]; inf where none)."""
    num_classes = jax.eval_shape(logits_fn, x).shape[-1]
    if self.targets > num_classes - 1:
      raise errors.UserError(f'FAB-T with targets={self.targets}: the model has only '
                             f'{num_classes - 1} other classes.')
    ranked = jnp.argsort(-logits_fn(x), axis=-1)
    shape = x.shape
    flat = x.reshape(shape[0], -1)
    best, dist = flat, jnp.full(shape[0], jnp.inf)
    lo, hi = (-jnp.inf, jnp.inf) if self.bounds is None else self.bounds
    for t in range(self.targets):
      target = jnp.take(ranked, first_target + t + 1, axis=1)
      for r in range(self.restarts):
        key = jax.random.fold_in(rng, t * self.restarts + r)
        start = flat if r == 0 else self._random_start(key, flat, dist, lo, hi)
        adv, d = _fab_run(logits_fn, flat, start, y, target, self, lo, hi, shape)
        better = d < dist
        best = jnp.where(better[:, None], adv, best)
        dist = jnp.where(better, d, dist)
    return jax.lax.stop_gradient(best.reshape(shape)), dist

  def _random_start(self, key, x0, dist, lo, hi):
    """Half of min(best norm, ε) from x0 in a random direction (AutoAttack's FAB)."""
    radius = jnp.minimum(dist, self.eps)[:, None]
    if self.norm == 'linf':
      u = jax.random.uniform(key, x0.shape, x0.dtype, -1.0, 1.0)
    else:
      u = jax.random.normal(key, x0.shape, x0.dtype)
    u = u / (_norm(u, self.norm)[:, None] + 1e-12)
    return jnp.clip(x0 + 0.5 * radius * u, lo, hi)


def _fab_run(logits_fn, x0, start, y, target, atk: FAB, lo, hi, shape):
  """One FAB-T run from `start` on flattened inputs: (best adversarial, its norm or inf)."""

  def diff(z):  # f = z_y − z_t per example; its sum's gradient is each example's own
    logits = logits_fn(z.reshape(shape))
    f = (jnp.take_along_axis(logits, y[:, None], -1)
         - jnp.take_along_axis(logits, target[:, None], -1))[:, 0]
    return jnp.sum(f), f

  grad_fn = jax.grad(diff, has_aux=True)

  def body(_, carry):
    x1, best, dist = carry
    g, f = grad_fn(x1)
    # The linearised boundary ⟨g, z⟩ = ⟨g, x1⟩ − f, reached from x1 and from x0.
    d1 = min_norm_step(x1, g, -f, atk.norm, lo, hi)
    d2 = min_norm_step(x0, g, -f + jnp.sum(g * (x1 - x0), 1), atk.norm, lo, hi)
    a1 = jnp.maximum(_norm(d1, atk.norm), 1e-8)
    a2 = jnp.maximum(_norm(d2, atk.norm), 1e-8)
    alpha = jnp.clip(a1 / (a1 + a2), 0.0, atk.alpha_max)[:, None]
    x1 = jnp.clip((1 - alpha) * (x1 + atk.eta * d1) + alpha * (x0 + atk.eta * d2), lo, hi)
    fooled = jnp.argmax(logits_fn(x1.reshape(shape)), -1) != y
    d = _norm(x1 - x0, atk.norm)
    better = fooled & (d < dist)
    best = jnp.where(better[:, None], x1, best)
    dist = jnp.where(better, d, dist)
    x1 = jnp.where(fooled[:, None], x0 + atk.beta * (x1 - x0), x1)
    return x1, best, dist

  init = (start, x0, jnp.full(x0.shape[0], jnp.inf))
  _, best, dist = jax.lax.fori_loop(0, atk.num_steps, body, init)
  return best, dist
