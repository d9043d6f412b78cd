"""tradeoff.bench_xla writes out tradeoff's own network and attack in plain JAX."""
import jax
import jax.numpy as jnp
import numpy as np

from tradeoff import attacks
from tradeoff import bench_xla
from tradeoff import models


def _both():
  module = models.MadryCNN(num_outputs=10, mean=(0.1307,), std=(0.3081,))
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  params = module.init(jax.random.key(1), x)['params']
  p = {'c1': params['Conv_0']['kernel'], 'b1': params['Conv_0']['bias'],
       'c2': params['Conv_1']['kernel'], 'b2': params['Conv_1']['bias'],
       'd1': params['Dense_0']['kernel'], 'e1': params['Dense_0']['bias'],
       'd2': params['Dense_1']['kernel'], 'e2': params['Dense_1']['bias']}
  return module, params, p, x


def test_network_equals_the_registry_madry_cnn():
  module, params, p, x = _both()
  np.testing.assert_allclose(bench_xla.apply(p, x), module.apply({'params': params}, x),
                             rtol=1e-5, atol=1e-5)


def test_pgd_equals_tradeoffs_attack_from_the_same_start():
  module, params, p, x = _both()
  y = jnp.array([0, 1, 2, 3])
  ours = bench_xla.pgd_linf(p, x, y, None, 3, eps=0.3, step=0.1, random_start=False)
  atk = attacks.Attack(norm='linf', eps=0.3, num_steps=3, step_size=0.1, random_start=False)
  theirs = atk(lambda z: module.apply({'params': params}, z), x, y, jax.random.key(2))
  np.testing.assert_allclose(ours, theirs, atol=1e-6)
  assert float(jnp.abs(ours - x).max()) > 0.05  # the attack moved


def test_step_flops_agrees_with_xlas_cost_analysis():
  # XLA's count of the same step differs from the layer count by its treatment
  # of the first convolution and elementwise ops; a wrong term would be far off.
  _, _, p, x = _both()
  x = jnp.zeros((16, 28, 28, 1))
  y = jnp.zeros(16, jnp.int32)
  for k in (0, 2):
    cost = bench_xla.make_step(k).lower(p, x, y, jax.random.PRNGKey(0)).compile().cost_analysis()
    xla = float((cost[0] if isinstance(cost, (list, tuple)) else cost)['flops'])
    assert 0.8 < xla / bench_xla.step_flops(k, 16) < 1.2, (k, xla, bench_xla.step_flops(k, 16))
