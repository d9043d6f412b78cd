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

import math

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


# ---------------------------------------------------------------------------
# The all-Gaussian variant (EPFL lecture notes): x = a·y + N(0, I_D).


def gaussian_means(dim: int) -> np.ndarray:
  """a = (1, √(log D/(D−1)), ..., √(log D/(D−1))) ∈ R^D (D = dim ≥ 2).

  x_1 alone has risk Φ(−1); the D − 1 weak features together carry
  ‖a_weak‖² = log D, so the Bayes classifier's risk Φ(−√(1 + log D)) → 0.
  """
  if dim < 2:
    raise ValueError(f'The Gaussian model needs D >= 2 features, got {dim}.')
  return np.concatenate([[1.0], np.full(dim - 1, np.sqrt(np.log(dim) / (dim - 1)))])


def gaussian_eps(dim: int) -> float:
  """The adversary's ℓ∞ radius 2√(log D/(D−1)): twice a weak feature's mean."""
  return float(2 * gaussian_means(dim)[1])


def gaussian_linear_accuracy(w: np.ndarray, b: float, a: np.ndarray, eps: float = 0.0
                             ) -> float:
  """Accuracy of sign(wᵀx + b) on x = a·y + N(0, I) against an ℓ∞ adversary.

  The margin y(wᵀx + b) = aᵀw − ε‖w‖₁ + y·b + ‖w‖₂·Z under the worst case
  δ* = −ε·y·sign(w).
  """
  w = np.asarray(w, np.float64)
  mean = float(np.dot(a, w) - eps * np.abs(w).sum())
  std = float(np.linalg.norm(w))
  return 0.5 * sum(_margin_positive_prob(mean + y * b, std) for y in (1.0, -1.0))


def gaussian_bayes_risks(dim: int) -> dict[str, float]:
  """Standard and adversarial (ε = gaussian_eps) risks of the Bayes classifier
  sign(aᵀx) and of sign(x_1), in O(1) memory (D may be 10⁹).

  With a_w = √(log D/(D−1)): ‖a‖₂² = 1 + log D and ‖a‖₁ = 1 + (D−1)·a_w, so the
  Bayes margin is N(‖a‖₂² − ε‖a‖₁, ‖a‖₂²); sign(x_1)'s is N(1 − ε, 1).
  """
  if dim < 2:
    raise ValueError(f'The Gaussian model needs D >= 2 features, got {dim}.')
  a_w = math.sqrt(math.log(dim) / (dim - 1))
  eps = 2 * a_w
  sq = 1 + math.log(dim)
  l1 = 1 + (dim - 1) * a_w
  risk = lambda mean, std: float(special.ndtr(-mean / std))
  return {'bayes_risk': risk(sq, math.sqrt(sq)),
          'bayes_adversarial_risk': risk(sq - eps * l1, math.sqrt(sq)),
          'x1_risk': risk(1.0, 1.0),
          'x1_adversarial_risk': risk(1.0 - eps, 1.0)}
