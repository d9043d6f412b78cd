"""FAB-T: the exact box projection, minimal norms of linear classifiers, invariants."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from tradeoff import attacks
from tradeoff import errors
from tradeoff import models
from tradeoff.attacks import fab
import test_apgd


@pytest.mark.parametrize('norm', ['linf', 'l2'])
def test_min_norm_step_solves_the_box_constrained_problem(norm):
  """Against scipy: a linear program for ℓ∞, SLSQP for ℓ2 (min ‖d‖ s.t. ⟨w, d⟩ = c,
  0 ≤ t + d ≤ 1), on problems where the box binds and where the target is out of reach."""
  rng = np.random.default_rng(0)
  b, n = 8, 12
  t = rng.random((b, n))
  w = rng.normal(size=(b, n))
  w[0, :4] = 0.0                                   # coordinates that cannot help
  c = rng.normal(size=b) * 1.5
  c[1] = 100.0                                     # beyond the box: no solution
  d = np.asarray(fab.min_norm_step(jnp.asarray(t, jnp.float32), jnp.asarray(w, jnp.float32),
                                   jnp.asarray(c, jnp.float32), norm, 0.0, 1.0), np.float64)
  assert (t + d).min() >= -1e-6 and (t + d).max() <= 1 + 1e-6
  for i in range(b):
    box = [(-t[i, j], 1 - t[i, j]) for j in range(n)]
    if i == 1:   # the corner that moves ⟨w, ·⟩ the most
      np.testing.assert_allclose(d[i], np.where(w[i] > 0, 1 - t[i], -t[i]), atol=1e-6)
      continue
    np.testing.assert_allclose(w[i] @ d[i], c[i], atol=1e-4)
    if norm == 'linf':
      a_ub = np.block([[np.eye(n), -np.ones((n, 1))], [-np.eye(n), -np.ones((n, 1))]])
      res = optimize.linprog(np.r_[np.zeros(n), 1.0], A_ub=a_ub, b_ub=np.zeros(2 * n),
                             A_eq=np.r_[w[i], 0.0][None], b_eq=[c[i]], bounds=box + [(0, None)])
      assert res.success
      assert np.abs(d[i]).max() == pytest.approx(res.fun, rel=1e-4)
    else:
      res = optimize.minimize(lambda z: z @ z, np.zeros(n), jac=lambda z: 2 * z, bounds=box,
                              constraints=[{'type': 'eq', 'fun': lambda z, i=i: w[i] @ z - c[i]}],
                              method='SLSQP')
      assert res.success
      assert np.linalg.norm(d[i]) == pytest.approx(np.sqrt(res.fun), rel=1e-4)


@pytest.mark.parametrize('norm,dual', [('linf', 1), ('l2', 2)])
def test_fab_finds_the_minimal_norms_of_a_linear_classifier(norm, dual):
  """The distance from x to the nearest point a linear classifier gets wrong is
  min_j (z_y − z_j)/‖w_y − w_j‖_* (‖·‖_* the dual norm): FAB-T over all other
  classes must find it, up to the overshoot its pull-back by β leaves."""
  w, b, x, y, logits_fn = test_apgd._linear_problem()
  z = x @ w + b
  margins = z[np.arange(len(y)), y][:, None] - z
  dual_norms = np.linalg.norm(w.T[y][:, None, :] - w.T[None], ord=dual, axis=-1)
  ratio = margins / np.where(dual_norms > 0, dual_norms, 1.0)
  ratio[np.arange(len(y)), y] = np.inf
  exact = ratio.min(1)
  atk = attacks.FAB(norm=norm, eps=1.0, targets=4, bounds=None)
  x_adv, dist = jax.jit(lambda a, c: atk.minimal(logits_fn, a, c, jax.random.key(0)))(x, y)
  x_adv, dist = np.asarray(x_adv), np.asarray(dist)
  assert np.all(np.argmax(logits_fn(x_adv), -1) != y)
  np.testing.assert_allclose(dist, np.linalg.norm(x_adv - x, ord=np.inf if norm == 'linf'
                                                  else 2, axis=1), rtol=1e-5)
  assert np.all(dist >= exact * (1 - 1e-4))    # nothing beats the exact minimum
  assert np.all(dist <= exact * 1.01)          # and FAB gets within 1 % of it


def test_fab_reaches_the_exact_robust_accuracy_of_a_linear_classifier():
  w, b, x, y, logits_fn = test_apgd._linear_problem()
  eps = 0.1
  exact = test_apgd._exact_linf_robust_accuracy(w, b, x, y, eps)
  acc, x_adv = test_apgd._robust_accuracy(attacks.FAB(eps=eps, targets=4, bounds=None),
                                          logits_fn, x, y)
  assert exact <= acc <= exact + 0.01
  assert np.abs(x_adv - x).max() <= eps * (1 + 1e-6)


@pytest.mark.parametrize('norm,eps', [('linf', 0.1), ('l2', 0.8)])
def test_fab_stays_in_ball_and_box_and_passes_no_gradient(norm, eps):
  module = models.MLP(num_outputs=5, hidden=(32,))
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.random((16, 12)), jnp.float32)
  params = module.init(jax.random.key(0), x)['params']
  logits_fn = lambda z: module.apply({'params': params}, z)
  y = jnp.argmax(logits_fn(x), -1)
  atk = attacks.FAB(norm=norm, eps=eps, num_steps=10, restarts=2, targets=3)
  x_adv = np.asarray(jax.jit(lambda a: atk(logits_fn, a, y, jax.random.key(2)))(x))
  delta = (x_adv - np.asarray(x)).reshape(16, -1)
  size = np.abs(delta).max(1) if norm == 'linf' else np.linalg.norm(delta, axis=1)
  assert size.max() <= eps * (1 + 1e-5)
  assert x_adv.min() >= 0 and x_adv.max() <= 1
  moved = size > 0   # where FAB succeeded within ε, the point is misclassified
  assert moved.any()
  assert np.all(np.argmax(logits_fn(x_adv[moved]), -1) != np.asarray(y)[moved])
  grad = jax.grad(lambda a: jnp.sum(atk(logits_fn, a, y, jax.random.key(2))))(x)
  np.testing.assert_array_equal(grad, 0.0)


def test_fab_per_target_runs_each_target_under_one_compilation():
  """The cascade's form of FAB-T: one single-target attack, the target passed as a
  traced `first_target`; its runs over j = 0..k-1 together are FAB-T over k targets."""
  w, b, x, y, logits_fn = test_apgd._linear_problem()
  atk = attacks.FAB(norm='l2', eps=1.0, targets=3, bounds=None)
  one, count = atk.per_target()
  assert (one.targets, count) == (1, 3) and atk.describe()['name'] == 'fab_t3'
  run = jax.jit(lambda j: one.minimal(logits_fn, x, y, jax.random.key(0), j)[1])
  per_target = np.stack([np.asarray(run(j)) for j in range(count)])
  assert run._cache_size() == 1
  _, together = atk.minimal(logits_fn, x, y, jax.random.key(0))
  np.testing.assert_allclose(per_target.min(0), np.asarray(together), rtol=1e-6)
  assert not np.allclose(per_target[0], per_target[1])   # different targets


def test_bad_fab_settings_are_named():
  with pytest.raises(errors.UserError, match='targets >= 1'):
    attacks.FAB(eps=0.3, targets=0)
  with pytest.raises(errors.UserError, match='only 2 other classes'):
    attacks.FAB(eps=0.3, targets=3)(lambda z: z[:, :3], jnp.zeros((2, 4)),
                                    jnp.zeros(2, jnp.int32), jax.random.key(0))
