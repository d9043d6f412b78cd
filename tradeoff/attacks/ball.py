"""The threat model's geometry: random starts in, steps within and projection onto
an ℓ∞ or ℓ2 ball intersected with the input box. Shared by every attack."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def per_example_norm(v: jax.Array) -> jax.Array:
  """‖v_i‖₂ of each example, shaped [B, 1, ..., 1] to broadcast against v."""
  return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))


def random_start(rng, x, norm, eps, enabled=True):
  """A point uniform in the ε-ball around each x (x itself if not enabled)."""
  if not enabled:
    return x
  if norm == 'linf':
    return x + jax.random.uniform(rng, x.shape, x.dtype, -eps, eps)
  # Uniform in the ℓ2 ball: Gaussian direction, radius ε·U^(1/n).
  k_dir, k_rad = jax.random.split(rng)
  direction = jax.random.normal(k_dir, x.shape, x.dtype)
  direction /= per_example_norm(direction) + 1e-12
  n = math.prod(x.shape[1:])
  radius = eps * jax.random.uniform(k_rad, (x.shape[0],) + (1,) * (x.ndim - 1)) ** (1 / n)
  return x + radius * direction


def step(x_adv, grad, norm, step_size):
  """A steepest-ascent step: sign(grad) for ℓ∞, grad/‖grad‖₂ for ℓ2."""
  if norm == 'linf':
    return x_adv + step_size * jnp.sign(grad)
  return x_adv + step_size * grad / (per_example_norm(grad) + 1e-12)


def project(x_adv, x, norm, eps, bounds):
  """Onto the ε-ball around x, then into the input box `bounds` (None: no box)."""
  if norm == 'linf':
    x_adv = jnp.clip(x_adv, x - eps, x + eps)
  else:
    delta = x_adv - x
    scale = jnp.minimum(1.0, eps / (per_example_norm(delta) + 1e-12))
    x_adv = x + delta * scale
  if bounds is not None:
    # With x inside the box, clipping moves every coordinate towards x, so
    # ‖δ‖ can only shrink: the result stays in the ball.
    x_adv = jnp.clip(x_adv, bounds[0], bounds[1])
  return x_adv
