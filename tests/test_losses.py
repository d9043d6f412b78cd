"""Losses: registry, user functions, Danskin's gradient, TRADES, hinge."""
import functools
import sys
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import losses
from tradeoff import models
from tradeoff import objectives


def _problem(norm='l2', eps=0.8, random_start=False, num_steps=5):
  module = models.MLP(num_outputs=4, hidden=(16,))
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.random((32, 12), np.float32)),
           'label': jnp.asarray(rng.integers(0, 4, 32).astype(np.int32))}
  params = module.init(jax.random.key(0), batch['image'])['params']
  attack = attacks.Attack(norm=norm, eps=eps, num_steps=num_steps, step_size=eps / 3,
                          random_start=random_start)
  ctx = losses.Context(module=module, attack=attack,
                       config=ml_collections.ConfigDict({'beta': 6.0}))
  return params, batch, ctx


def test_registry_lists_choices_and_imports_user_losses():
  assert {'standard', 'pgd_at', 'trades', 'hinge'} <= set(losses.LOSSES.names())
  with pytest.raises(ValueError, match="Unknown loss 'pgd'.*pgd_at.*standard"):
    losses.get('pgd')
  module = types.ModuleType('my_user_losses')

  def doubled(params, model_state, batch, rng, ctx):
    loss, aux = losses.pgd_at(params, model_state, batch, rng, ctx)
    return 2 * loss, aux

  module.doubled = doubled
  sys.modules['my_user_losses'] = module
  try:
    fn = losses.get('my_user_losses:doubled')
    params, batch, ctx = _problem()
    key = jax.random.key(0)
    np.testing.assert_allclose(fn(params, {}, batch, key, ctx)[0],
                               2 * losses.pgd_at(params, {}, batch, key, ctx)[0], rtol=1e-6)
    with pytest.raises(ValueError, match='has no attribute'):
      losses.get('my_user_losses:nope')
  finally:
    del sys.modules['my_user_losses']


def _danskin_reference_grad(params, batch, ctx, key):
  """∇θ L(x_adv; θ) with x_adv computed first and passed in as a constant."""
  x_adv = ctx.attack(ctx.logits_fn(params, {}), batch['image'], batch['label'], key)
  x_adv = np.asarray(x_adv)  # a plain array: no path back to θ

  def loss_at(p):
    logits = ctx.apply(p, {}, x_adv, train=True)[0]
    return jnp.mean(objectives.cross_entropy(logits, batch['label']))

  return jax.grad(loss_at)(params)


def test_pgd_at_gradient_is_danskins():
  """Fails if Attack.perturb's stop_gradient is removed: ℓ2 steps are smooth in θ."""
  params, batch, ctx = _problem(norm='l2')
  key = jax.random.key(0)
  grad = jax.grad(lambda p: losses.pgd_at(p, {}, batch, key, ctx)[0])(params)
  ref = _danskin_reference_grad(params, batch, ctx, key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), grad, ref)


def test_gradient_through_the_loop_would_differ():
  """The Danskin test above can fail: differentiating through ℓ2 PGD changes the gradient."""
  params, batch, ctx = _problem(norm='l2')
  atk = ctx.attack
  unstopped = functools.partial(attacks._pgd, atk=atk)  # pylint: disable=protected-access

  def through_loop(p):
    logits_fn = ctx.logits_fn(p, {})
    x_adv = unstopped(attacks.label_objective(logits_fn, batch['label']), batch['image'],
                      jax.random.key(0))
    return jnp.mean(objectives.cross_entropy(ctx.apply(p, {}, x_adv, True)[0], batch['label']))

  grad = jax.grad(through_loop)(params)
  ref = _danskin_reference_grad(params, batch, ctx, jax.random.key(0))
  diff = max(jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), grad, ref)))
  assert diff > 1e-4


def test_zero_eps_pgd_at_is_standard_training():
  params, batch, ctx = _problem(eps=0.0)
  key = jax.random.key(0)
  a = losses.pgd_at(params, {}, batch, key, ctx)[0]
  b = losses.standard(params, {}, batch, key, ctx)[0]
  np.testing.assert_allclose(a, b, rtol=1e-6)


def test_trades_is_ce_plus_beta_kl_and_needs_random_start():
  params, batch, ctx = _problem(norm='linf', eps=0.1, random_start=True)
  key = jax.random.key(0)
  loss, (metrics, _) = losses.trades(params, {}, batch, key, ctx)
  clean = jnp.mean(objectives.cross_entropy(ctx.apply(params, {}, batch['image'], True)[0],
                                            batch['label']))
  assert float(metrics['trades_kl']) > 0
  np.testing.assert_allclose(loss, clean + 6.0 * metrics['trades_kl'], rtol=1e-5)
  _, _, no_start = _problem(norm='linf', eps=0.1, random_start=False)
  with pytest.raises(ValueError, match='random_start'):
    losses.trades(params, {}, batch, key, no_start)


def test_hinge_on_linear_model_equals_svm_objective_with_l1_penalty():
  """Adversarial hinge of a linear model under ℓ∞ = hinge(ỹ(wᵀx+b) - ε‖w‖₁)."""
  module = models.Linear(num_outputs=1)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(40, 10)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, 2, 40).astype(np.int32))
  params = module.init(jax.random.key(0), x)['params']
  eps = 0.2
  ctx = losses.Context(module=module, config=ml_collections.ConfigDict(),
                       attack=attacks.Attack(norm='linf', eps=eps, num_steps=2, step_size=eps,
                                             random_start=False, bounds=None))
  loss = losses.hinge(params, {}, {'image': x, 'label': y}, jax.random.key(0), ctx)[0]
  w, b = params['dense']['kernel'][:, 0], params['dense']['bias'][0]
  margin = (2 * y - 1) * (x @ w + b) - eps * jnp.abs(w).sum()
  np.testing.assert_allclose(loss, jnp.mean(jax.nn.relu(1 - margin)), rtol=1e-5)


def test_readme_loss_example_runs(repo_root):
  """The custom-loss example in README.md, executed as written."""
  readme = open(f'{repo_root}/README.md').read()
  code = readme.split('# my_losses.py\n', 1)[1].split('```', 1)[0]
  module = types.ModuleType('my_losses')
  exec(compile(code, 'README.md:my_losses', 'exec'), module.__dict__)  # pylint: disable=exec-used
  sys.modules['my_losses'] = module
  try:
    params, batch, ctx = _problem(norm='linf', eps=0.1, random_start=True)
    fn = losses.get('my_losses:pgd_plus_clean')
    loss, (metrics, state) = jax.jit(lambda p, b, k: fn(p, {}, b, k, ctx))(
        params, batch, jax.random.key(0))
    assert np.isfinite(float(loss)) and state == {} and 'accuracy' in metrics
    grads = jax.grad(lambda p: fn(p, {}, batch, jax.random.key(0), ctx)[0])(params)
    assert max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads)) > 0
  finally:
    del sys.modules['my_losses']
