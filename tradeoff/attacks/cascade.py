"""Attacks run one after another, each on the points the ones before left robust.

AutoAttack (Croce & Hein 2020) is such a cascade: its standard version is
APGD-CE → APGD-T → FAB-T → Square, its "fast" variant here APGD-CE → APGD-T. A
point counts as robust only if every stage fails on it (per-example worst
case). `accuracy.evaluate_clean_and_robust` runs the stages on the
still-robust points only (a targeted stage one target at a time, as the
reference implementation does) and records the robust accuracy after each
stage; calling the cascade directly runs every stage on the whole batch.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp

from tradeoff import models


@dataclasses.dataclass(frozen=True)
class Cascade:
  """Stages (attacks with the common signature) and the name they go by."""
  name: str
  stages: tuple[Any, ...]

  @property
  def eps(self) -> float:
    return self.stages[0].eps

  @property
  def norm(self) -> str:
    return self.stages[0].norm

  @property
  def active(self) -> bool:
    return self.eps > 0

  def describe(self) -> dict:
    return {'name': self.name, 'norm': self.norm, 'eps': self.eps,
            'restarts': max(getattr(s, 'restarts', 1) for s in self.stages),
            'num_steps': max(getattr(s, 'num_steps', 0) for s in self.stages),
            'stages': [s.describe() for s in self.stages]}

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array) -> jax.Array:
    """Per example, the first stage's output that the model misclassifies (else the last)."""
    out, found = x, jnp.zeros(x.shape[0], bool)
    shape = (-1,) + (1,) * (x.ndim - 1)
    for i, stage in enumerate(self.stages):
      x_adv = stage(logits_fn, x, y, jax.random.fold_in(rng, i))
      fooled = models.predict(logits_fn(x_adv)) != y
      out = jnp.where((~found).reshape(shape), x_adv, out)
      found = found | fooled
    return jax.lax.stop_gradient(out)
