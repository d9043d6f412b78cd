"""Per-example classification objectives, shared by attacks and training losses.

Each takes logits f32[B, K] and labels i32[B] and returns f32[B]. K = 1 means a
binary score s with class 1 iff s > 0; its label sign is ỹ = 2y - 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def _signed(y: jax.Array) -> jax.Array:
  return (2 * y - 1).astype(jnp.float32)


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Softmax cross-entropy; for one logit the logistic loss softplus(-ỹ·s)."""
  if logits.shape[-1] == 1:
    return jax.nn.softplus(-_signed(y) * logits[:, 0])
  return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def margin(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Carlini-Wagner margin max_{j≠y} z_j - z_y; > 0 exactly when misclassified."""
  if logits.shape[-1] == 1:
    return -_signed(y) * logits[:, 0]
  true = jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
  other = jnp.where(jax.nn.one_hot(y, logits.shape[-1], dtype=bool), -jnp.inf, logits)
  return other.max(axis=-1) - true


def hinge(logits: jax.Array, y: jax.Array) -> jax.Array:
  """Hinge loss: max(0, 1 - ỹ·s) for one logit, Crammer-Singer max(0, 1 + margin) else."""
  return jax.nn.relu(1.0 + margin(logits, y))


def kl_divergence(p_logits: jax.Array, q_logits: jax.Array) -> jax.Array:
  """KL(softmax(p) ‖ softmax(q)) per example (Bernoulli KL for one logit)."""
  if p_logits.shape[-1] == 1:
    p_logits = jnp.concatenate([jnp.zeros_like(p_logits), p_logits], axis=-1)
    q_logits = jnp.concatenate([jnp.zeros_like(q_logits), q_logits], axis=-1)
  log_p = jax.nn.log_softmax(p_logits)
  log_q = jax.nn.log_softmax(q_logits)
  return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
