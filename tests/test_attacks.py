"""PGD invariants: the ball, the box, ascent, restarts, FGSM, exact linear worst case."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import models
from tradeoff import objectives


def _mlp_logits(seed=0, d=20, k=5):
  module = models.MLP(num_outputs=k, hidden=(32,))
  params = module.init(jax.random.key(seed), jnp.zeros((1, d)))['params']
  return lambda x: module.apply({'params': params}, x)


def _data(n=64, d=20, k=5, seed=1):
  rng = np.random.default_rng(seed)
  return (jnp.asarray(rng.random((n, d), np.float32)),
          jnp.asarray(rng.integers(0, k, n).astype(np.int32)))


def _norm(delta, norm):
  flat = delta.reshape(delta.shape[0], -1)
  return jnp.abs(flat).max(1) if norm == 'linf' else jnp.sqrt((flat ** 2).sum(1))


@pytest.mark.parametrize('norm,eps', [('linf', 0.1), ('l2', 0.5)])
@pytest.mark.parametrize('random_start,restarts', [(True, 1), (False, 1), (True, 3)])
def test_stays_in_ball_and_box_and_raises_loss(norm, eps, random_start, restarts):
  logits_fn = _mlp_logits()
  x, y = _data()
  atk = attacks.Attack(norm=norm, eps=eps, num_steps=10, step_size=2.5 * eps / 10,
                       restarts=restarts, random_start=random_start)
  x_adv = jax.jit(atk.__call__, static_argnums=0)(logits_fn, x, y, jax.random.key(0))
  assert x_adv.shape == x.shape
  assert float(_norm(x_adv - x, norm).max()) <= eps * (1 + 1e-5)
  assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
  clean = objectives.cross_entropy(logits_fn(x), y)
  adv = objectives.cross_entropy(logits_fn(x_adv), y)
  assert float(adv.mean()) > float(clean.mean()) + 0.05
  assert float(jnp.mean(adv >= clean - 1e-6)) >= 0.95


def test_restarts_keep_worst_per_example():
  logits_fn = _mlp_logits()
  x, y = _data()
  base = dict(norm='linf', eps=0.1, num_steps=3, step_size=0.04, random_start=True)
  key = jax.random.key(3)
  best = attacks.Attack(**base, restarts=4)(logits_fn, x, y, key)
  single = [attacks.Attack(**base)(logits_fn, x, y, jax.random.fold_in(key, r)) for r in range(4)]
  wrong = lambda z: models.predict(logits_fn(z)) != y
  loss = lambda z: objectives.cross_entropy(logits_fn(z), y)
  any_wrong = jnp.stack([wrong(s) for s in single]).any(0)
  np.testing.assert_array_equal(wrong(best), any_wrong)  # a success wherever one exists
  max_loss = jnp.stack([loss(s) for s in single]).max(0)
  none_wrong = ~any_wrong
  np.testing.assert_allclose(loss(best)[none_wrong], max_loss[none_wrong], rtol=1e-5)


def test_fgsm_is_one_signed_step():
  logits_fn = _mlp_logits()
  x, y = _data()
  x = 0.25 + 0.5 * x  # keep x ± ε inside [0, 1] so clipping does not interfere
  g = jax.grad(lambda z: objectives.cross_entropy(logits_fn(z), y).sum())(x)
  x_adv = attacks.fgsm('linf', 0.1)(logits_fn, x, y, jax.random.key(0))
  np.testing.assert_allclose(x_adv, x + 0.1 * jnp.sign(g), atol=1e-6)
  assert attacks.fgsm('linf', 0.1).describe()['name'] == 'fgsm'


def test_targeted_moves_towards_target():
  logits_fn = _mlp_logits()
  x, _ = _data()
  target = jnp.full((x.shape[0],), 2, jnp.int32)
  atk = attacks.Attack(norm='l2', eps=3.0, num_steps=20, step_size=0.3, random_start=False)
  x_adv = atk(logits_fn, x, target, jax.random.key(0), targeted=True)
  hit = lambda z: float(jnp.mean(models.predict(logits_fn(z)) == 2))
  assert hit(x_adv) > hit(x) + 0.3


@pytest.mark.parametrize('norm', ['linf', 'l2'])
def test_linear_model_pgd_finds_exact_worst_case(norm):
  """For f(x) = wᵀx + b the worst case is known: δ* = -ε·ỹ·sign(w) (ℓ∞), -ε·ỹ·w/‖w‖ (ℓ2)."""
  rng = np.random.default_rng(0)
  d, n, eps = 30, 50, 0.3
  w = jnp.asarray(rng.normal(size=(d, 1)).astype(np.float32))
  logits_fn = lambda z: z @ w + 0.1
  x = jnp.asarray(rng.normal(size=(n, d)).astype(np.float32))
  y = jnp.asarray(rng.integers(0, 2, n).astype(np.int32))
  # ℓ∞: from any random start one step of size ε reaches the corner. ℓ2: from
  # x one normalised step of size ε lands on the maximiser.
  atk = attacks.Attack(norm=norm, eps=eps, num_steps=5, step_size=eps,
                       random_start=norm == 'linf', bounds=None)
  x_adv = atk(logits_fn, x, y, jax.random.key(0))
  ysign = (2 * y - 1).astype(jnp.float32)[:, None]
  direction = jnp.sign(w[:, 0]) if norm == 'linf' else w[:, 0] / jnp.linalg.norm(w)
  np.testing.assert_allclose(x_adv, x - eps * ysign * direction, atol=1e-5)


def test_zero_eps_returns_input_and_bad_config_is_rejected():
  logits_fn = _mlp_logits()
  x, y = _data()
  assert attacks.Attack(norm='linf', eps=0.0, num_steps=5, step_size=0.1)(
      logits_fn, x, y, jax.random.key(0)) is x
  with pytest.raises(ValueError, match="Unknown attack norm 'l3'.*l2"):
    attacks.Attack(norm='l3', eps=0.1)
  with pytest.raises(ValueError, match='step_size'):
    attacks.Attack(norm='l2', eps=0.1, num_steps=3, step_size=0.0)


def test_output_carries_no_gradient():
  logits_fn = _mlp_logits()
  x, y = _data()
  atk = attacks.Attack(norm='l2', eps=0.5, num_steps=3, step_size=0.2, random_start=False)
  g = jax.grad(lambda z: atk(logits_fn, z, y, jax.random.key(0)).sum())(x)
  assert float(jnp.abs(g).max()) == 0.0


def test_scale_shrinks_the_ball_and_can_be_traced():
  """Attack.scale (ε warm-up) multiplies ε and the step size, also under jit."""
  from tradeoff import train  # pylint: disable=g-import-not-at-top
  logits_fn = _mlp_logits()
  x, y = _data()
  atk = attacks.Attack(norm='linf', eps=0.2, num_steps=5, step_size=0.1)
  run = jax.jit(lambda s: attacks.Attack(**{**atk.__dict__, 'scale': s})(
      logits_fn, x, y, jax.random.key(0)))
  for step, expected in ((0, 0.25), (1, 0.5), (3, 1.0), (10, 1.0)):
    scale = train.eps_scale(jnp.asarray(step), 4)
    assert float(scale) == expected
    linf = float(jnp.abs(run(scale) - x).max())
    assert linf <= 0.2 * expected + 1e-6 and linf > 0.2 * expected * 0.9
  assert train.eps_scale(jnp.asarray(0), 0) == 1.0
