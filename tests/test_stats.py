"""Intervals of accuracies."""
import pytest

from tradeoff import stats


def test_wilson_interval_known_values():
  # 90 of 100: (0.8256, 0.9448), the textbook value
  lo, hi = stats.wilson(90, 100)
  assert (lo, hi) == pytest.approx((0.82563, 0.94477), abs=1e-5)
  # at 0 % and 100 % the interval keeps a width (a normal approximation would not)
  assert stats.wilson(0, 1000) == pytest.approx((0.0, 0.003826), abs=1e-6)
  assert stats.wilson(1000, 1000)[0] == pytest.approx(0.996174, abs=1e-6)
  assert stats.wilson(0, 0) == (0.0, 1.0)
  # more points, a narrower interval
  assert stats.wilson(900, 1000)[1] - stats.wilson(900, 1000)[0] < hi - lo


def test_records_get_the_interval_of_each_accuracy_over_its_own_points():
  rec = stats.with_intervals({'clean_accuracy': 0.9883, 'num_examples': 10000,
                              'robust_accuracy': 0.9, 'num_robust_examples': 1000})
  assert rec['clean_accuracy_ci95'] == pytest.approx(list(stats.wilson(9883, 10000)))
  assert rec['robust_accuracy_ci95'] == pytest.approx(list(stats.wilson(900, 1000)))
  assert 'robust_subset_clean_accuracy_ci95' not in rec
