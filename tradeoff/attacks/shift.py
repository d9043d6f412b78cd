"""The adversary of Theorem 2.1 on the §2 distribution: a fixed shift of the weak features.

On x = (x_1, x_2, ..., x_{d+1}) with x_1 the robust feature and x_i ~ N(ηy, 1)
for i ≥ 2, the ℓ∞ perturbation δ = (0, −εỹ, ..., −εỹ) (ỹ = ±1 the label's sign)
with ε = 2η turns the weak features of class y into those of class −y. The
proof of Theorem 2.1 shows that against this one perturbation any classifier
with standard accuracy 1 − δ keeps at most p/(1−p)·δ accuracy. It needs no
gradient, so a model whose gradients mislead PGD does not escape it: run after
PGD in a cascade (`eval_attack.name='pgd_shift'`), the per-example worst case
is never above the theorem's bound except by sampling noise.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp

from tradeoff import errors
from tradeoff import registry


@dataclasses.dataclass(frozen=True)
class FeatureShift:
  """x_adv = x − ε·ỹ on every feature from `first_weak` on (ℓ∞ norm exactly ε).

  Attributes:
    eps: the shift, the ℓ∞ radius of the threat model; 0 disables the attack.
    norm: 'linf' only (the shift is the ℓ∞ ball's corner).
    first_weak: index of the first weak feature (the §2 distribution: 1).
    bounds: (lo, hi) input box, or None for unbounded features.
  """
  eps: float = 0.0
  norm: str = 'linf'
  first_weak: int = 1
  bounds: tuple[float, float] | None = None

  def __post_init__(self):
    registry.check_choice('feature_shift norm', self.norm, ('linf',))
    registry.check_at_least('feature_shift', eps=(self.eps, 0), first_weak=(self.first_weak, 0))

  @property
  def name(self) -> str:
    return 'feature_shift'

  @property
  def active(self) -> bool:
    return self.eps > 0

  def describe(self) -> dict:
    return {'name': self.name if self.active else 'none', 'norm': self.norm, 'eps': self.eps,
            'first_weak': self.first_weak, 'restarts': 1, 'num_steps': 0,
            'bounds': None if self.bounds is None else list(self.bounds)}

  def __call__(self, logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array,
               y: jax.Array, rng: jax.Array) -> jax.Array:
    del logits_fn, rng
    if x.ndim != 2:
      raise errors.UserError(f'feature_shift attacks feature vectors [B, D] (the §2 '
                             f'distribution); got inputs of shape {x.shape}.')
    if not self.active:
      return x
    sign = (2 * y - 1).astype(x.dtype)[:, None]
    weak = (jnp.arange(x.shape[1]) >= self.first_weak).astype(x.dtype)[None, :]
    x_adv = x - self.eps * sign * weak
    if self.bounds is not None:
      x_adv = jnp.clip(x_adv, *self.bounds)
    return jax.lax.stop_gradient(x_adv)
