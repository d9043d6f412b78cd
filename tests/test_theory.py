"""§2 closed forms against Monte-Carlo and against the project's own PGD."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import configlib
from tradeoff import errors
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


def _shift(eps):
  block = configlib.attack_config(1, 1.0)
  block.name, block.norm, block.eps = 'feature_shift', 'linf', eps
  return attacks.from_config(block, None)


def test_feature_shift_is_the_theorem_2_1_adversary():
  p, d = 0.9, 200
  eta = 3 / np.sqrt(d)
  x, y_pm = _sample(p, eta, d, n=100_000)
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray((y_pm + 1) / 2, jnp.int32)
  atk = _shift(2 * eta)
  x_adv = atk(None, x, y, jax.random.key(0))
  delta = np.asarray(x_adv - x)
  np.testing.assert_array_equal(delta[:, 0], 0.0)                  # x_1 untouched
  np.testing.assert_allclose(np.abs(delta[:, 1:]), 2 * eta, rtol=1e-5)   # a corner of the ball
  np.testing.assert_allclose(np.sign(delta[:, 1]), -y_pm)           # towards the other class
  grad = jax.grad(lambda z: jnp.sum(atk(None, z, y, jax.random.key(0))))(x)
  assert not np.any(np.asarray(grad))                               # stop_gradient
  # For f_avg the shift is the exact worst case: its closed form.
  w = theory.f_avg_weights(d)
  _within_4_se(theory.f_avg_accuracy(eta, d, 2 * eta),
               np.mean(y_pm * (np.asarray(x_adv, np.float64) @ w) > 0))
  # Against it no classifier beats p/(1-p)·δ, a nonlinear one included: trust the weak
  # features where they are confident, else x_1.
  x64 = np.asarray(x, np.float64)
  for t in (0.5, 2.0, 4.0):
    def f(z, t=t):
      s = z[:, 1:].mean(axis=1) * np.sqrt(d)
      return np.where(np.abs(s) > t, np.sign(s), np.sign(z[:, 0]))
    clean = np.mean(f(x64) == y_pm)
    robust = np.mean((f(x64) == y_pm) & (f(np.asarray(x_adv, np.float64)) == y_pm))
    slack = 4 * np.sqrt(0.25 / len(y_pm)) * (1 + p / (1 - p))
    assert robust <= theory.robust_accuracy_bound(clean, p) + slack, (t, clean, robust)
  with pytest.raises(errors.UserError, match='feature vectors'):
    atk(None, jnp.zeros((2, 4, 4, 1)), jnp.zeros(2, jnp.int32), jax.random.key(0))


def test_pgd_shift_catches_what_masked_gradients_hide_from_pgd():
  """A model whose input gradient is zero fools PGD; the cascade's shift stage does not."""
  p, d = 0.9, 200
  eta = 3 / np.sqrt(d)
  x, y_pm = _sample(p, eta, d, n=2000)
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray((y_pm + 1) / 2, jnp.int32)
  w = jnp.asarray(theory.f_avg_weights(d), jnp.float32)
  logits_fn = lambda z: (jax.lax.stop_gradient(z) @ w)[:, None]   # f_avg, gradient-masked
  block = configlib.attack_config(20, 2.5)
  block.name, block.norm, block.eps = 'pgd_shift', 'linf', 2 * eta
  block.step_size = 2.5 * 2 * eta / 20
  cascade = attacks.from_config(block, None)
  assert [s.describe()['name'] for s in cascade.stages] == ['pgd20', 'feature_shift']
  correct = lambda z: np.asarray((logits_fn(z)[:, 0] > 0) == (y > 0))
  pgd_only = correct(cascade.stages[0](logits_fn, x, y, jax.random.key(0)))
  both = correct(cascade(logits_fn, x, y, jax.random.key(0)))
  assert pgd_only.mean() > 0.9 and both.mean() < 0.05
