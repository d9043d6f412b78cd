"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), ℓ∞: no gradients.

A score-based random search: start from vertical stripes of ±ε, then at every
query redraw one random square window of the perturbation to ±ε (one sign per
channel) and keep the change for an example if it lowers that example's
margin z_y − max_{k≠y} z_k. The window's area is a share p of the image that
starts at p_init = 0.8 and is halved on the paper's schedule (after 10, 50, 200,
500, 1000, 2000, 4000, 6000 and 8000 of 10 000 queries, rescaled to the budget).
Examples already misclassified are left alone. Because it never uses the
model's gradient, Square finds adversarial examples against models whose
gradients are masked; a gap between it and the gradient attacks is the
standard sign of gradient masking (Carlini et al. 2019). The ℓ2 variant is not
implemented.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from tradeoff import errors
from tradeoff import objectives
from tradeoff import registry
from tradeoff.attacks import ball

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(i: jax.Array, num_queries: int, p_init: float) -> jax.Array:
  """The share of the image redrawn at query i (halved on the paper's schedule)."""
  scaled = jnp.asarray([int(h / 10000 * num_queries) for h in _HALVINGS])
  return p_init / 2.0 ** jnp.sum(i > scaled)


@dataclasses.dataclass(frozen=True)
class Square:
  """A configured ℓ∞ Square Attack (untargeted, margin loss).

  Attributes:
    norm: 'linf' (the ℓ2 variant is not implemented).
    eps: radius of the threat model; 0 disables the attack.
    num_queries: model evaluations per example after the initialisation
      (AutoAttack standard: 5000).
    p_init: initial share of the image redrawn per query (0.8 as in AutoAttack).
    restarts: independent runs; the first success is kept.
    bounds: (lo, hi) input box.
  """
  norm: str = 'linf'
  eps: float = 0.0
  num_queries: int = 5000
  p_init: float = 0.8
  restarts: int = 1
  bounds: tuple[float, float] | None = (0.0, 1.0)

  def __post_init__(self):
    registry.check_choice('Square norm (ℓ2 is not implemented)', self.norm, ('linf',))
    if self.eps < 0 or self.num_queries < 1 or self.restarts < 1 or not 0 < self.p_init <= 1:
      raise errors.UserError(
          f'Square needs eps >= 0, num_queries >= 1, restarts >= 1, 0 < p_init <= 1; got '
          f'eps={self.eps}, num_queries={self.num_queries}, restarts={self.restarts}, '
          f'p_init={self.p_init}.')

  @property
  def name(self) -> str:
    return 'square'

  @property
  def num_steps(self) -> int:
    return self.num_queries

  def describe(self) -> dict:
    d = dataclasses.asdict(self)
    d['bounds'] = None if self.bounds is None else list(self.bounds)
    d['name'] = 'square' if self.eps > 0 else 'none'
    d['loss'] = 'margin'
    return d

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array) -> jax.Array:
    """Adversarial examples for images x f32[B, H, W, C] inside bounds."""
    if self.eps <= 0:
      return x
    if x.ndim != 4:
      raise errors.UserError(f'Square attacks images [B, H, W, C]; got inputs of shape '
                             f'{x.shape}.')
    out, found = x, jnp.zeros(x.shape[0], bool)
    for r in range(self.restarts):
      x_adv, success = _square(logits_fn, x, y, jax.random.fold_in(rng, r), self)
      out = jnp.where((~found)[:, None, None, None], x_adv, out)
      found = found | success
    return jax.lax.stop_gradient(out)


def _square(logits_fn, x, y, rng, atk: Square):
  """One run: (x_adv, success bool[B])."""
  b, h, w, c = x.shape
  eps = atk.eps
  k_init, k_loop = jax.random.split(rng)
  stripes = eps * jax.random.choice(k_init, jnp.array([-1.0, 1.0]), (b, 1, w, c))
  x_best = ball.project(x + stripes, x, 'linf', eps, atk.bounds)
  m_best = -objectives.margin(logits_fn(x_best), y)
  rows, cols = jnp.arange(h)[None, :, None, None], jnp.arange(w)[None, None, :, None]

  def body(i, carry):
    x_best, m_best = carry  # m: z_y − max_{k≠y} z_k, negative once misclassified
    k_pos, k_sign = jax.random.split(jax.random.fold_in(k_loop, i))
    p = window_share(i, atk.num_queries, atk.p_init)
    s = jnp.clip(jnp.round(jnp.sqrt(p * h * w)), 1, min(h, w)).astype(jnp.int32)
    r0 = jax.random.randint(k_pos, (b,), 0, h - s + 1)[:, None, None, None]
    c0 = jax.random.randint(jax.random.fold_in(k_pos, 1), (b,), 0, w - s + 1)[:, None, None, None]
    inside = (rows >= r0) & (rows < r0 + s) & (cols >= c0) & (cols < c0 + s)
    signs = eps * jax.random.choice(k_sign, jnp.array([-1.0, 1.0]), (b, 1, 1, c))
    delta = jnp.where(inside, signs, x_best - x)
    x_new = ball.project(x + delta, x, 'linf', eps, atk.bounds)
    m_new = -objectives.margin(logits_fn(x_new), y)
    take = (m_new < m_best) & (m_best > 0)   # misclassified examples stay as they are
    return (jnp.where(take[:, None, None, None], x_new, x_best), jnp.where(take, m_new, m_best))

  x_best, m_best = jax.lax.fori_loop(0, atk.num_queries, body, (x_best, m_best))
  return x_best, m_best < 0
