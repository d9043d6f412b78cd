"""Closed forms for the §2 distribution of Tsipras et al. (2019).

    y ~ uniform{-1, +1};  x_1 = y w.p. p, else -y;  x_2..x_{d+1} ~ N(η·y, 1)

For a linear classifier sign(wᵀx + b) with w = (w_1, v), v ∈ R^d, the signed
margin y(wᵀx + b) = w_1·s + η·Σv + ‖v‖₂·Z + y·b, with s = y·x_1 ∈ {+1 (prob p),
-1} and Z ~ N(0, 1). An ℓ∞ adversary of radius ε lowers every margin by exactly
ε‖w‖₁ (δ* = -ε·y·sign(w)), so the robust accuracy is the standard accuracy of
the margin shifted by -ε‖w‖₁. A point is correct when its margin is > 0.

All functions are pure NumPy/SciPy in float64.
"""
from __future__ import annotations

import numpy as np
from scipy import special


def _margin_positive_prob(mean: float, std: float) -> float:
  """P(mean + std·Z > 0)."""
  if std == 0:
    return float(mean > 0)
  return float(special.ndtr(mean / std))


def linear_accuracy(w: np.ndarray, b: float, p: float, eta: float, eps: float = 0.0) -> float:
  """Accuracy of sign(wᵀx + b) against an ℓ∞ adversary of radius eps (0: standard).

  Args:
    w: f[d + 1] weights, w[0] on the robust feature x_1.
    b: bias.
    p: P(x_1 = y).
    eta: mean shift of the weak features.
    eps: ℓ∞ radius of the adversary (the perturbation may touch every feature).

  Returns:
    The exact probability of a correct prediction (margin > 0).
  """
  w = np.asarray(w, np.float64)
  w1, v = w[0], w[1:]
  shift = eta * v.sum() - eps * np.abs(w).sum()
  std = float(np.linalg.norm(v))
  acc = 0.0
  for y in (1.0, -1.0):
    for s, prob in ((1.0, p), (-1.0, 1.0 - p)):
      acc += 0.5 * prob * _margin_positive_prob(w1 * s + shift + y * b, std)
  return acc


def f_avg_weights(d: int) -> np.ndarray:
  """f_avg(x) = sign(mean of the weak features): w = (0, 1/d, ..., 1/d)."""
  return np.concatenate([[0.0], np.full(d, 1.0 / d)])


def f_avg_accuracy(eta: float, d: int, eps: float = 0.0) -> float:
  """Φ((η - ε)·√d): > 99 % for η ≥ 3/√d at ε = 0, < 1 % at ε = 2η."""
  return float(special.ndtr((eta - eps) * np.sqrt(d)))


def robust_accuracy_bound(standard_accuracy, p: float):
  """Theorem 2.1: standard accuracy ≥ 1 - δ implies ℓ∞ robust accuracy at ε ≥ 2η
  is at most p/(1 - p)·δ (capped at 1)."""
  delta = 1.0 - np.asarray(standard_accuracy, np.float64)
  return np.minimum(1.0, p / (1.0 - p) * np.maximum(delta, 0.0))
