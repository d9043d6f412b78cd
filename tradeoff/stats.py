"""Uncertainty of an accuracy measured on n test points.

An accuracy here is k/n for k correct points among n; its 95 % interval is the
Wilson score interval (Wilson 1927), which stays inside [0, 1] and keeps its
coverage near 0 and 1, where robust accuracies often are (a normal-approximation
interval collapses to a point at 0 % or 100 %). It treats the n points as a
sample from the test distribution and the model as fixed: it says how much the
number would move on other test points, not over training seeds.
"""
from __future__ import annotations

import math

Z95 = 1.959963984540054   # the standard normal's 97.5 % quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
  """The Wilson score interval of k successes in n trials (n = 0: (0, 1))."""
  if n <= 0:
    return 0.0, 1.0
  p = k / n
  centre = (p + z * z / (2 * n)) / (1 + z * z / n)
  half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
  return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
  """The 95 % Wilson interval of an accuracy measured on n points."""
  return wilson(round(accuracy * n), n)


def with_intervals(result: dict) -> dict:
  """An evaluation record with the 95 % intervals of its accuracies added:
  clean_accuracy_ci95 over num_examples, robust_accuracy_ci95 over
  num_robust_examples (the points the attack ran on)."""
  out = dict(result)
  for key, n_key in (('clean_accuracy', 'num_examples'),
                     ('robust_accuracy', 'num_robust_examples'),
                     ('robust_subset_clean_accuracy', 'num_robust_examples')):
    if key in out and n_key in out:
      out[f'{key}_ci95'] = list(accuracy_interval(float(out[key]), int(out[n_key])))
  return out
