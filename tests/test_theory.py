"""§2 closed forms against Monte-Carlo and against the project's own PGD."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import synthetic
from tradeoff import theory

N = 200_000


def _sample(p, eta, d, seed=0):
  x, y = synthetic.sample(jax.random.key(seed), N, p, eta, d)
  return np.asarray(x, np.float64), np.asarray(y, np.float64)


def _mc_accuracy(w, b, x, y, eps=0.0):
  """Empirical accuracy after the exact ℓ∞ worst case δ* = -ε·y·sign(w)."""
  x_adv = x - eps * y[:, None] * np.sign(w)[None, :]
  return np.mean(y * (x_adv @ w + b) > 0)


def _within_4_se(exact, empirical):
  se = np.sqrt(max(exact * (1 - exact), 1e-12) / N)
  assert abs(exact - empirical) <= 4 * se + 1e-12, (exact, empirical, se)


@pytest.mark.parametrize('eps', [0.0, 0.05, 0.2])
def test_linear_accuracy_matches_monte_carlo(eps):
  p, eta, d = 0.8, 0.1, 50
  x, y = _sample(p, eta, d)
  rng = np.random.default_rng(0)
  for _ in range(3):
    w = rng.normal(size=d + 1) + np.r_[0.5, np.full(d, 0.1)]
    b = float(rng.normal() * 0.3)
    _within_4_se(theory.linear_accuracy(w, b, p, eta, eps), _mc_accuracy(w, b, x, y, eps))


def test_f_avg_is_accurate_but_not_robust():
  d = 1000
  eta = 3 / np.sqrt(d)
  assert theory.f_avg_accuracy(eta, d) > 0.99
  assert theory.f_avg_accuracy(eta, d, eps=2 * eta) < 0.01
  w = theory.f_avg_weights(d)
  assert theory.linear_accuracy(w, 0.0, 0.9, eta) == pytest.approx(theory.f_avg_accuracy(eta, d))
  x, y = _sample(0.9, eta, d)
  _within_4_se(theory.f_avg_accuracy(eta, d), _mc_accuracy(w, 0.0, x, y))
  _within_4_se(theory.f_avg_accuracy(eta, d, 2 * eta), _mc_accuracy(w, 0.0, x, y, 2 * eta))


def test_projects_pgd_finds_the_closed_form_worst_case():
  p, eta, d, eps = 0.9, 0.2, 30, 0.3
  x, y = synthetic.sample(jax.random.key(1), 20_000, p, eta, d)
  w = np.r_[0.3, np.full(d, 0.05)]
  logits_fn = lambda z: (z @ jnp.asarray(w, jnp.float32) + 0.05)[:, None]
  labels = ((y + 1) // 2).astype(jnp.int32)
  atk = attacks.Attack(norm='linf', eps=eps, num_steps=3, step_size=eps, bounds=None)
  x_adv = atk(logits_fn, x, labels, jax.random.key(0))
  expected = x - eps * y[:, None].astype(jnp.float32) * jnp.sign(jnp.asarray(w, jnp.float32))
  np.testing.assert_allclose(x_adv, expected, atol=1e-5)
  acc = float(jnp.mean(y * logits_fn(x_adv)[:, 0] > 0))
  exact = theory.linear_accuracy(w, 0.05, p, eta, eps)
  assert abs(acc - exact) <= 4 * np.sqrt(exact * (1 - exact) / 20_000)


def test_theorem_2_1_bound_holds_for_linear_family():
  p, d = 0.9, 200
  eta = 3 / np.sqrt(d)
  for alpha in np.linspace(0, 1, 21):  # weight on the robust feature vs the weak ones
    for beta in (0.5, 1.0, 2.0):
      w = np.r_[alpha, np.full(d, beta * (1 - alpha) / d)]
      std = theory.linear_accuracy(w, 0.0, p, eta)
      rob = theory.linear_accuracy(w, 0.0, p, eta, eps=2 * eta)
      assert rob <= theory.robust_accuracy_bound(std, p) + 1e-9
  assert theory.robust_accuracy_bound(0.99, 0.9) == pytest.approx(0.09)
  assert theory.robust_accuracy_bound(0.5, 0.9) == 1.0
