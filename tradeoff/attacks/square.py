"""Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020), ℓ∞ and ℓ2: no gradients.

A score-based random search that keeps a change for an example only if it
lowers that example's margin z_y − max_{k≠y} z_k. Examples already
misclassified are left alone. The window's area is a share p of the image that
starts at p_init = 0.8 and is halved on the paper's schedule (after 10, 50, 200,
500, 1000, 2000, 4000, 6000 and 8000 of 10 000 queries; rescaled to the budget
unless rescale_schedule is off, as in AutoAttack's standard version).

ℓ∞: start from vertical stripes of ±ε; at every query redraw one random square
window of the perturbation to ±ε (one sign per channel).

ℓ2: start from a grid of "pseudo-Gaussian" blocks (concentric squares of
weight 1/k², one half positive and one negative, random sign per channel),
scaled to norm ε; at every query draw two windows, add a fresh block of that
shape to the first, move the mass of the second into it (the second is
zeroed) and rescale to norm ε, so every candidate lies on the ε-sphere before
clipping to the box.

Because it never uses the model's gradient, Square finds adversarial examples
against models whose gradients are masked; a gap between it and the gradient
attacks is the standard sign of gradient masking (Carlini et al. 2019).
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

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def window_share(i: jax.Array, num_queries: int, p_init: float,
                 rescale: bool = True) -> jax.Array:
  """The share of the image redrawn at query i, halved on the paper's schedule of
  10 000 queries, rescaled to num_queries if `rescale` (AutoAttack's standard
  version keeps the unscaled schedule with its 5000 queries)."""
  scale = num_queries / 10000 if rescale else 1.0
  scaled = jnp.asarray([int(h * scale) for h in _HALVINGS])
  return p_init / 2.0 ** jnp.sum(i > scaled)


@dataclasses.dataclass(frozen=True)
class Square:
  """A configured Square Attack (untargeted, margin loss).

  Attributes:
    norm: 'linf' or 'l2'.
    eps: radius of the threat model; 0 disables the attack.
    num_queries: model evaluations per example after the initialisation
      (AutoAttack standard: 5000).
    p_init: initial share of the image redrawn per query (0.8 as in AutoAttack).
    rescale_schedule: halve the share on the 10 000-query schedule rescaled to
      num_queries (True) or as it is (False, AutoAttack standard).
    restarts: independent runs; the first success is kept.
    bounds: (lo, hi) input box.
  """
  norm: str = 'linf'
  eps: float = 0.0
  num_queries: int = 5000
  p_init: float = 0.8
  rescale_schedule: bool = True
  restarts: int = 1
  bounds: tuple[float, float] | None = (0.0, 1.0)

  def __post_init__(self):
    registry.check_choice('attack norm', self.norm, ('linf', 'l2'))
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
    d['num_steps'] = self.num_queries   # as every attack's record has it
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
      run = _square if self.norm == 'linf' else _square_l2
      x_adv, success = run(logits_fn, x, y, jax.random.fold_in(rng, r), self)
      out = jnp.where((~found)[:, None, None, None], x_adv, out)
      found = found | success
    return jax.lax.stop_gradient(out)


def _random_windows(key, s, shape):
  """A random s×s window per example of images `shape` [B, H, W, C]: the mask
  bool[B, H, W, 1] and each pixel's row and column relative to its window."""
  b, h, w, _ = shape
  rows, cols = jnp.arange(h)[None, :, None, None], jnp.arange(w)[None, None, :, None]
  r0 = jax.random.randint(key, (b,), 0, h - s + 1)[:, None, None, None]
  c0 = jax.random.randint(jax.random.fold_in(key, 1), (b,), 0, w - s + 1)[:, None, None, None]
  inside = (rows >= r0) & (rows < r0 + s) & (cols >= c0) & (cols < c0 + s)
  return inside, rows - r0, cols - c0


def _keep_better(x_new, m_new, x_best, m_best):
  """Takes a candidate where it lowers the margin of a still-correct example
  (misclassified examples, m ≤ 0, stay as they are)."""
  take = (m_new < m_best) & (m_best > 0)
  return jnp.where(take[:, None, None, None], x_new, x_best), jnp.where(take, m_new, m_best)


def linf_window_side(p, h: int, w: int) -> jax.Array:
  """The side of ℓ∞ Square's window redrawing a share p of an h×w image: the
  reference's round(sqrt(p·h·w)), at least 1, at most h − 1 (p = 0.8 on 28×28: 25)."""
  return jnp.clip(jnp.round(jnp.sqrt(p * h * w)), 1, max(min(h, w) - 1, 1)).astype(jnp.int32)


def _square(logits_fn, x, y, rng, atk: Square):
  """One run: (x_adv, success bool[B])."""
  b, h, w, c = x.shape
  eps = atk.eps
  k_init, k_loop = jax.random.split(rng)
  stripes = eps * jax.random.choice(k_init, jnp.array([-1.0, 1.0]), (b, 1, w, c))
  x_best = ball.project(x + stripes, x, 'linf', eps, atk.bounds)
  m_best = -objectives.margin(logits_fn(x_best), y)

  def body(i, carry):
    x_best, m_best = carry  # m: z_y − max_{k≠y} z_k, negative once misclassified
    k_pos, k_sign = jax.random.split(jax.random.fold_in(k_loop, i))
    s = linf_window_side(window_share(i, atk.num_queries, atk.p_init, atk.rescale_schedule),
                         h, w)
    inside, _, _ = _random_windows(k_pos, s, x.shape)
    signs = eps * jax.random.choice(k_sign, jnp.array([-1.0, 1.0]), (b, 1, 1, c))
    delta = jnp.where(inside, signs, x_best - x)
    x_new = ball.project(x + delta, x, 'linf', eps, atk.bounds)
    return _keep_better(x_new, -objectives.margin(logits_fn(x_new), y), x_best, m_best)

  x_best, m_best = jax.lax.fori_loop(0, atk.num_queries, body, (x_best, m_best))
  return x_best, m_best < 0


def _sum_inverse_squares(n: int) -> np.ndarray:
  """H[m] = Σ_{j=1..m} 1/j² for m = 0..n."""
  return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1) ** 2)])


def pseudo_gaussian(s: int) -> np.ndarray:
  """The ℓ2 Square Attack's s×s block: over an (a×b) half, concentric squares
  around the centre add 1/(k+1)² for the k-th ring outwards; the top half is
  positive, the bottom negative, each half and the whole of unit ℓ2 norm."""
  def half(a, b):
    if a == 0:
      return np.zeros((0, b))
    rows, cols = np.meshgrid(np.arange(a), np.arange(b), indexing='ij')
    ring = np.maximum(np.abs(rows - a // 2), np.abs(cols - b // 2))
    h = _sum_inverse_squares(max(a // 2, b // 2) + 1)
    v = h[max(a // 2, b // 2) + 1] - h[ring]
    return v / np.sqrt(np.sum(v ** 2))
  out = np.concatenate([half(s // 2, s), -half(s - s // 2, s)])
  return out / np.sqrt(np.sum(out ** 2))


def _pseudo_gaussian_at(u, v, s, table):
  """pseudo_gaussian(s)[u, v] for traced s and index grids u, v inside [0, s)
  (before the final normalisation, which the caller does per window)."""
  def half(a, b, uu):
    ring = jnp.maximum(jnp.abs(uu - a // 2), jnp.abs(v - b // 2))
    k = jnp.maximum(a // 2, b // 2) + 1
    return table[k] - table[jnp.clip(ring, 0, k)]
  top = u < s // 2
  return jnp.where(top, half(s // 2, s, u), -half(s - s // 2, s, u - s // 2))


def window_pattern(inside, u, v, s, table):
  """pseudo_gaussian(s) placed where `inside`, at local coordinates (u, v); 0 elsewhere."""
  raw = jnp.where(inside, _pseudo_gaussian_at(u, v, s, table), 0.0)
  top = inside & (u < s // 2)
  halves = [jnp.where(part, raw, 0.0) for part in (top, inside & ~top)]
  out = sum(p / (ball.per_example_norm(p) + 1e-12) for p in halves)
  return out / (ball.per_example_norm(out) + 1e-12)


def l2_window_update(delta, in1, in2, block, eps):
  """The ℓ2 Square Attack's proposal (the reference's update, with its 2021 per-channel
  window norm): in window 1, the fresh block plus the old window content rescaled to
  unit norm, each channel separately; window 2 emptied; the window's new content
  given, again per channel, the norm sqrt(max(ε² − ‖δ‖², 0) / C + ‖δ on both windows‖²).

  Args:
    delta: f32[B, H, W, C] the current perturbation x_best − x.
    in1: bool[B, H, W, 1] window 1 (the new block's).
    in2: bool[B, H, W, 1] window 2 (emptied).
    block: f32[B, H, W, C] the fresh block, unit ℓ2 norm per channel, 0 outside window 1.
    eps: the radius.

  Returns:
    The proposed perturbation f32[B, H, W, C] (before it is scaled onto the ε-sphere).
  """
  c = delta.shape[-1]
  per_channel = lambda d: jnp.sqrt(jnp.sum(jnp.square(d), axis=(1, 2), keepdims=True))
  old = jnp.where(in1, delta, 0.0)
  new = block + old / (per_channel(old) + 1e-12)
  norm_image = ball.per_example_norm(delta)
  norm_windows = ball.per_example_norm(jnp.where(in1 | in2, delta, 0.0))
  budget = jnp.sqrt(jnp.maximum(eps ** 2 - norm_image ** 2, 0.0) / c + norm_windows ** 2)
  new = new / (per_channel(new) + 1e-12) * budget
  return jnp.where(in1, new, jnp.where(in2, 0.0, delta))


def _square_l2(logits_fn, x, y, rng, atk: Square):
  """One ℓ2 run: (x_adv, success bool[B])."""
  b, h, w, c = x.shape
  eps = atk.eps
  k_init, k_loop = jax.random.split(rng)
  table = jnp.asarray(_sum_inverse_squares(max(h, w)), x.dtype)

  def unit(d):
    return d / (ball.per_example_norm(d) + 1e-12)

  # Initialisation: a grid of blocks of side h // 5 with random signs and orientations.
  s0 = max(h // 5, 1)
  start = (h - 5 * s0) // 2 if h >= 5 * s0 else 0
  block = jnp.asarray(pseudo_gaussian(s0), x.dtype)
  blocks = jnp.stack([block, block.T])
  delta = jnp.zeros_like(x)
  rows, cols = range(start, h - s0 + 1, s0), range(start, w - s0 + 1, s0)
  for i, r in enumerate(rows):
    for j, q in enumerate(cols):
      k_pick, k_sign = jax.random.split(jax.random.fold_in(k_init, i * len(cols) + j))
      pick = jax.random.bernoulli(k_pick, 0.5, (b,)).astype(jnp.int32)
      sign = jax.random.choice(k_sign, jnp.array([-1.0, 1.0]), (b, 1, 1, c))
      delta = delta.at[:, r:r + s0, q:q + s0, :].set(blocks[pick][..., None] * sign)
  x_best = ball.project(x + eps * unit(delta), x, 'l2', eps, atk.bounds)
  m_best = -objectives.margin(logits_fn(x_best), y)

  def body(i, carry):
    x_best, m_best = carry
    k1, k2, k_sign, k_flip = jax.random.split(jax.random.fold_in(k_loop, i), 4)
    p = window_share(i, atk.num_queries, atk.p_init, atk.rescale_schedule)
    s = jnp.maximum(jnp.round(jnp.sqrt(p * h * w)), 3).astype(jnp.int32)
    s = jnp.minimum(s + (s % 2 == 0), min(h, w))
    in1, u, v = _random_windows(k1, s, x.shape)
    in2, _, _ = _random_windows(k2, s, x.shape)
    flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
    u, v = jnp.where(flip, v, u), jnp.where(flip, u, v)
    pattern = window_pattern(in1, u, v, s, table)
    sign = jax.random.choice(k_sign, jnp.array([-1.0, 1.0]), (b, 1, 1, c))
    delta = l2_window_update(x_best - x, in1, in2, pattern * sign, eps)
    x_new = ball.project(x + eps * unit(delta), x, 'l2', eps, atk.bounds)
    return _keep_better(x_new, -objectives.margin(logits_fn(x_new), y), x_best, m_best)

  x_best, m_best = jax.lax.fori_loop(0, atk.num_queries, body, (x_best, m_best))
  return x_best, m_best < 0
