"""The pmapped step equals the single-device step; runs write what they claim."""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from tradeoff import attacks
from tradeoff import data
from tradeoff import experiment
from tradeoff import losses
from tradeoff import models
from tradeoff import parallel
from tradeoff import train

# conftest.py gives the CPU 2 fake devices; on a 1-GPU host the default backend has one.
needs_two_devices = pytest.mark.skipif(
    jax.local_device_count() < 2,
    reason=f'needs 2 local devices, {jax.default_backend()} has {jax.local_device_count()}')


def _setup(model, loss_name='pgd_at', norm='l2', eps=1.0, random_start=False):
  attack = attacks.Attack(norm=norm, eps=eps, num_steps=3, step_size=eps / 2,
                          random_start=random_start)
  ctx = losses.Context(module=model, attack=attack,
                       config=ml_collections.ConfigDict({'beta': 6.0}))
  return losses.get(loss_name), ctx


@needs_two_devices
@pytest.mark.parametrize('model_name', ['madry_cnn', 'cifar_resnet'])
def test_pmap_step_matches_single_device_step(model_name):
  assert jax.local_device_count() == 2
  shape = (28, 28, 1) if model_name == 'madry_cnn' else (32, 32, 3)
  cfg = ml_collections.ConfigDict({'name': model_name, 'num_outputs': 0, 'normalize': True,
                                   'width': 1, 'units': 1, 'widen': 1})
  pmodel = models.build(cfg, 10, (0.5,), (0.25,), bn_axis_name=parallel.AXIS)
  smodel = models.build(cfg, 10, (0.5,), (0.25,), bn_axis_name=None)
  rng = np.random.default_rng(0)
  batch = {'image': rng.random((16,) + shape, np.float32),
           'label': rng.integers(0, 10, 16).astype(np.int32)}
  tx = optax.sgd(0.1, momentum=0.9)
  state = experiment.create_state(jax.random.key(0), smodel, batch['image'], tx)
  key = jax.random.key(1)
  # No random start: the pmapped step folds the device index into its key,
  # so random starts differ by design; everything else must agree.
  loss_fn, pctx = _setup(pmodel)
  _, sctx = _setup(smodel)
  p_step = train.make_p_train_step(loss_fn, pctx, data.get_augmentation('none'))
  s_step = jax.jit(functools.partial(train.train_step, loss_fn=loss_fn, ctx=sctx,
                                     augment=data.get_augmentation('none'), axis_name=None))
  s_state, s_metrics = s_step(state, batch, key)
  r_state, p_metrics = p_step(parallel.replicate(state, 2), parallel.shard(batch, 2), key)
  p_state = parallel.unreplicate(r_state)
  np.testing.assert_allclose(float(p_metrics['loss'][0]), float(s_metrics['loss']), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6),
               p_state.params, s_state.params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6),
               p_state.model_state, s_state.model_state)
  # The update moved the parameters (the comparison above is not vacuous).
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), s_state.params, state.params)
  assert max(jax.tree.leaves(moved)) > 1e-4


@needs_two_devices
def test_train_step_traces_once_across_steps_and_warmup():
  """Steps, batches and the ε warm-up scale are traced values: one compilation."""
  traces = []

  def counting_loss(*args):
    traces.append(1)  # runs only while tracing
    return losses.pgd_at(*args)

  model = models.MLP(num_outputs=10, hidden=(16,))
  _, ctx = _setup(model, norm='linf', eps=0.1, random_start=True)
  rng = np.random.default_rng(0)
  x = rng.random((8, 28, 28, 1), np.float32)
  state = experiment.create_state(jax.random.key(0), model, x, optax.sgd(0.1))
  p_step = train.make_p_train_step(counting_loss, ctx, data.get_augmentation('none'),
                                   eps_warmup_steps=3)
  rstate = parallel.replicate(state, 2)
  for step in range(5):
    batch = {'image': rng.random((8, 28, 28, 1), np.float32),
             'label': rng.integers(0, 10, 8).astype(np.int32)}
    rstate, metrics = p_step(rstate, parallel.shard(batch, 2), jax.random.key(step))
  assert int(parallel.unreplicate(rstate).step) == 5
  assert np.isfinite(float(metrics['loss'][0]))
  assert len(traces) == 1
