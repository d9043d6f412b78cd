"""§2 closed forms against Monte-Carlo and against the project's own PGD."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import synthetic
from tradeoff import theory

N = 200_000


def _sample(p, eta, d, seed=0, n=N):
  key = jax.random.fold_in(jax.random.key(seed[0]), seed[1]) if isinstance(seed, tuple) else (
      jax.random.key(seed))
  x, y = synthetic.sample(key, n, p, eta, d)
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
  # N samples of d = 1000 features in chunks (the whole float64 matrix would be 1.6 GB).
  chunks = [_sample(0.9, eta, d, seed=(0, i), n=N // 10) for i in range(10)]
  for eps in (0.0, 2 * eta):
    empirical = np.mean([_mc_accuracy(w, 0.0, x, y, eps) for x, y in chunks])
    _within_4_se(theory.f_avg_accuracy(eta, d, eps), empirical)


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


def test_stratified_sample_has_exact_label_and_agreement_counts():
  n, p = 2000, 0.9
  x, y = synthetic.sample_stratified(jax.random.key(0), n, p, 0.3, 7)
  x, y = np.asarray(x), np.asarray(y)
  assert x.shape == (n, 8) and (y == 1).sum() == n // 2
  for label in (1, -1):
    assert (x[y == label, 0] == label).sum() == round(p * n / 2)
  weak_mean = (x[:, 1:] * y[:, None]).mean()
  assert abs(weak_mean - 0.3) < 4 / np.sqrt(n * 7)
  with pytest.raises(ValueError, match='even n'):
    synthetic.sample_stratified(jax.random.key(0), 3, p, 0.3, 7)


@pytest.mark.parametrize('eps', [0.0, 0.15])
def test_gaussian_linear_accuracy_matches_monte_carlo(eps):
  dim = 40
  a = theory.gaussian_means(dim)
  x, y = synthetic.sample_gaussian(jax.random.key(3), N, dim)
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  rng = np.random.default_rng(1)
  for w, b in ((a, 0.0), (rng.normal(size=dim) + a, 0.2)):
    _within_4_se(theory.gaussian_linear_accuracy(w, b, a, eps), _mc_accuracy(w, b, x, y, eps))


def test_gaussian_bayes_risks_closed_form_and_limits():
  for dim in (10, 1000):
    a = theory.gaussian_means(dim)
    eps = theory.gaussian_eps(dim)
    risks = theory.gaussian_bayes_risks(dim)
    only_x1 = np.eye(dim)[0]
    assert risks['bayes_risk'] == pytest.approx(1 - theory.gaussian_linear_accuracy(a, 0, a))
    assert risks['bayes_adversarial_risk'] == pytest.approx(
        1 - theory.gaussian_linear_accuracy(a, 0, a, eps))
    assert risks['x1_adversarial_risk'] == pytest.approx(
        1 - theory.gaussian_linear_accuracy(only_x1, 0, a, eps))
  far = theory.gaussian_bayes_risks(10**9)
  assert far['bayes_risk'] < 1e-5 and far['bayes_adversarial_risk'] > 0.9999
  assert far['x1_risk'] == pytest.approx(0.158655, abs=1e-6)


@pytest.mark.parametrize('p,eta', [(0.9, 3 / np.sqrt(300)), (0.975, 4 / np.sqrt(300))])
def test_no_linear_classifier_beats_the_theorem_2_1_bound(p, eta):
  from tradeoff.figures import theory as theory_figs  # pylint: disable=g-import-not-at-top
  family = theory_figs.linear_families(p, eta, 300, 2 * eta)
  excess = [r['robust'] - float(theory.robust_accuracy_bound(r['standard'], p)) for r in family]
  assert max(excess) <= 1e-12
  # the bound is attained: sign(x_1) has standard = robust = p
  assert any(abs(r['standard'] - p) < 1e-9 and abs(r['robust'] - p) < 1e-9 for r in family)
