"""Models (shapes, pooling, in-model normalisation) and the config files."""
import glob
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tradeoff import configlib
from tradeoff import experiment
from tradeoff import models
from tradeoff import optim


def _model_cfg(name, **kw):
  cfg = ml_collections.ConfigDict({'name': name, 'num_outputs': 0, 'normalize': True,
                                   'hidden': (8,), 'width': 1, 'units': 1, 'widen': 1,
                                   'keep_features': ()})
  cfg.update(kw)
  return cfg


@pytest.mark.parametrize('name,shape', [('linear', (28, 28, 1)), ('mlp', (28, 28, 1)),
                                        ('madry_cnn', (28, 28, 1)),
                                        ('cifar_resnet', (32, 32, 3))])
def test_models_give_one_logit_per_class(name, shape):
  module = models.build(_model_cfg(name), 10, (0.5,), (0.2,))
  x = jnp.zeros((3,) + shape)
  # jitted: run eagerly, every layer's operations compile one by one (seconds cold)
  variables = jax.jit(module.init)(jax.random.key(0), x)
  logits, _ = jax.jit(lambda v, x: models.apply(
      module, v['params'], {k: a for k, a in v.items() if k != 'params'}, x, train=True))(
          variables, x)
  assert logits.shape == (3, 10)


def test_madry_cnn_has_the_papers_shape():
  module = models.build(_model_cfg('madry_cnn'), 10, (0.0,), (1.0,))
  params = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  shapes = sorted(p.shape for p in jax.tree.leaves(params) if p.ndim > 1)
  assert shapes == sorted([(5, 5, 1, 32), (5, 5, 32, 64), (7 * 7 * 64, 1024), (1024, 10)])


def test_binary_single_logit_only_for_two_classes():
  assert models.build(_model_cfg('linear', num_outputs=1), 2, (0.0,), (1.0,)).num_outputs == 1
  with pytest.raises(ValueError, match='num_outputs=1 is invalid for 10 classes'):
    models.build(_model_cfg('linear', num_outputs=1), 10, (0.0,), (1.0,))
  with pytest.raises(ValueError, match="Unknown model 'resnet'.*cifar_resnet"):
    models.build(_model_cfg('resnet'), 10, (0.0,), (1.0,))
  np.testing.assert_array_equal(models.predict(jnp.array([[-1.0], [2.0]])), [0, 1])


def test_reshape_max_pool_matches_flax_values_and_gradients():
  x = jax.random.normal(jax.random.key(0), (2, 8, 6, 3))
  ref = lambda z: nn.max_pool(z, (2, 2), (2, 2))
  np.testing.assert_array_equal(models.max_pool_2x2(x), ref(x))
  g = jax.grad(lambda z: (models.max_pool_2x2(z) ** 2).sum())(x)
  np.testing.assert_allclose(g, jax.grad(lambda z: (ref(z) ** 2).sum())(x), rtol=1e-6)


def test_normalisation_is_inside_the_model():
  """Model(x) with normalisation == the same weights without it on (x - mean) / std."""
  x = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1))
  with_norm = models.build(_model_cfg('madry_cnn'), 10, (0.13,), (0.31,))
  without = models.build(_model_cfg('madry_cnn', normalize=False), 10, (0.13,), (0.31,))
  params = with_norm.init(jax.random.key(0), x)['params']
  np.testing.assert_allclose(with_norm.apply({'params': params}, x),
                             without.apply({'params': params}, (x - 0.13) / 0.31), rtol=2e-5,
                             atol=2e-5)


CONFIGS = sorted(glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)),
                                        'configs', '*.py')))


def _load(path, arg=None):
  return configlib.load(f'{path}:{arg}' if arg else path)


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_every_config_and_its_smoke_variant_is_valid(path):
  for arg in (None, 'smoke'):
    c = _load(path, arg)
    atk, ev = configlib.resolve(c).attack, configlib.resolve(c).eval_attack
    assert atk.eps == ev.eps == c.eps and atk.norm == ev.norm == c.norm
    assert c.eval_attack.num_steps >= c.attack.num_steps
    assert c.eval_attack.num_steps * c.eval_attack.restarts > c.attack.num_steps
    experiment.validate(c)
    optim.build(c.optim, 100)
  assert 'python -m tradeoff.main --config=configs/' in open(path).read()
  with pytest.raises(ValueError, match="Unknown config variant 'smok'"):
    _load(path, 'smok')


def test_paper_epsilons():
  eps = {os.path.basename(p): _load(p).eps for p in CONFIGS}
  assert eps['mnist_linf.py'] == 0.3 and eps['mnist_l2.py'] == 1.5
  assert eps['cifar10_linf.py'] == pytest.approx(4 / 255) and eps['cifar10_l2.py'] == 0.314
  assert eps['restricted_imagenet_linf.py'] == 0.005 and eps['restricted_imagenet_l2.py'] == 1.0


def test_eps_override_moves_both_attacks_and_their_step_sizes():
  c = _load(CONFIGS[0])
  ratio_train = configlib.resolve(c).attack.step_size / c.eps
  ratio_eval = configlib.resolve(c).eval_attack.step_size / c.eps
  c.eps = 0.05
  atk, ev = configlib.resolve(c).attack, configlib.resolve(c).eval_attack
  assert atk.eps == ev.eps == 0.05
  assert atk.step_size == pytest.approx(0.05 * ratio_train)
  assert ev.step_size == pytest.approx(0.05 * ratio_eval)
  c.attack.step_size = 0.01  # an explicit override still wins
  assert configlib.resolve(c).attack.step_size == 0.01


def test_attack_eps_override_splits_train_and_eval_eps():
  c = _load(os.path.join(os.path.dirname(CONFIGS[0]), 'mnist_linf.py'))
  c.attack.eps = 0.1
  atk, ev = configlib.resolve(c).attack, configlib.resolve(c).eval_attack
  assert atk.eps == 0.1 and ev.eps == c.eps == 0.3
  assert atk.step_size == pytest.approx(0.1 * c.attack.step_scale / c.attack.num_steps)
  assert ev.step_size == pytest.approx(0.3 * c.eval_attack.step_scale / c.eval_attack.num_steps)
  c.eval_attack.norm = 'l2'
  assert configlib.resolve(c).eval_attack.norm == 'l2'
  assert configlib.resolve(c).attack.norm == 'linf'


def test_bad_choices_are_named_with_valid_options():
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.3, model='madry_cnn')
  c.optim.name = 'adagrad'
  with pytest.raises(ValueError, match="Unknown optim.name 'adagrad'.*adam, adamw"):
    optim.build(c.optim, 10)
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.3, model='madry_cnn')
  c.data.batch_size = 3
  with pytest.raises(ValueError, match='batch_size=3 must be a positive multiple of the 2'):
    experiment.validate(c)
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.3, model='madry_cnn')
  c.eval_attack.num_steps = 1
  with pytest.raises(ValueError, match='weaker than the training attack'):
    experiment.validate(c)
  # AutoAttack is judged by its gradient stages' budget, not the PGD fields.
  c.eval_attack.name = 'autoattack'
  experiment.validate(c)
  c.eval_attack.autoattack.apgd_steps = 2
  with pytest.raises(ValueError, match=r'eval_attack \(num_steps=2, restarts=1\) is weaker'):
    experiment.validate(c)


@pytest.mark.parametrize('depth,expected', [(18, 11_689_512), (50, 25_557_032)])
def test_imagenet_resnets_have_torchvisions_parameter_counts(depth, expected):
  module = models.ImageNetResNet(num_outputs=1000, depth=depth)
  shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 224, 224, 3)))
  assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(shapes['params'])) == expected
  assert set(shapes) == {'params', 'batch_stats'}


def test_bfloat16_resnet_computes_in_bf16_with_float32_parameters_and_logits():
  cfg = configlib.base_config(dataset='cifar10', norm='linf', eps=0.0,
                              model='imagenet_resnet').model
  cfg.depth, cfg.dtype = 18, 'bfloat16'
  half = models.build(cfg, 9, (0.5,) * 3, (0.25,) * 3)
  cfg.dtype = 'float32'
  full = models.build(cfg, 9, (0.5,) * 3, (0.25,) * 3)
  x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  variables = jax.jit(full.init)(jax.random.key(0), x)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(variables))
  lo = jax.jit(half.apply)(variables, x)
  hi = jax.jit(full.apply)(variables, x)
  assert lo.dtype == jnp.float32 and lo.shape == (2, 9)
  np.testing.assert_allclose(lo, hi, atol=0.1 * float(jnp.abs(hi).max()) + 1e-3)
  assert not np.array_equal(np.asarray(lo), np.asarray(hi))   # bf16 did round something
  cfg.name, cfg.dtype = 'madry_cnn', 'bfloat16'
  with pytest.raises(ValueError, match="model.dtype='bfloat16' is supported by imagenet_resnet"):
    models.build(cfg, 10, (0.5,), (0.25,))
  cfg.dtype = 'float16'
  with pytest.raises(ValueError, match="Unknown model.dtype 'float16'.*bfloat16, float32"):
    models.build(cfg, 10, (0.5,), (0.25,))


def test_evaluation_computes_in_float32_unless_eval_dtype_says_otherwise():
  cfg = configlib.base_config(dataset='cifar10', norm='linf', eps=0.0,
                              model='imagenet_resnet').model
  cfg.dtype = 'bfloat16'
  assert models.eval_config(cfg).dtype == 'float32'
  cfg.eval_dtype = ''
  assert models.eval_config(cfg).dtype == 'bfloat16'
  cfg.eval_dtype = 'float16'
  with pytest.raises(ValueError, match=r"Unknown model.eval_dtype 'float16'.*bfloat16, float32"):
    models.eval_config(cfg)


@pytest.mark.parametrize('stride,padding', [(1, 'SAME'), (2, 'SAME'), (2, [(3, 3), (3, 3)])])
def test_the_models_convolution_has_laxs_values_and_gradients(stride, padding):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(3, 9, 9, 4)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(3, 3, 4, 5)), jnp.float32)
  dn = ('NHWC', 'HWIO', 'NHWC')
  plain = lambda x, k: jax.lax.conv_general_dilated(x, k, (stride, stride), padding,
                                                    dimension_numbers=dn)
  ours = lambda x, k: models.conv_general_dilated(x, k, (stride, stride), padding,
                                                  dimension_numbers=dn)
  np.testing.assert_allclose(ours(x, k), plain(x, k), rtol=1e-6, atol=1e-6)
  loss = lambda f: (lambda x, k: jnp.sum(jnp.sin(f(x, k))))
  for a, b in zip(jax.grad(loss(ours), (0, 1))(x, k), jax.grad(loss(plain), (0, 1))(x, k)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_input_gradients_inside_a_loop_use_only_canonical_convolutions():
  """Inside lax.fori_loop (the attacks), XLA:CPU leaves JAX's own input gradient in
  a swapped-kernel layout (dim labels 01oi) that ran 4-5× slower; the models'
  convolution keeps every convolution of an attack's loop canonical (01io)."""
  import re  # pylint: disable=g-import-not-at-top
  module = models.build(_model_cfg('madry_cnn'), 10, (0.5,), (0.2,))
  x = jnp.zeros((4, 28, 28, 1))
  params = jax.jit(module.init)(jax.random.key(0), x)
  grad = jax.grad(lambda z: jnp.sum(module.apply(params, z)))
  attack = jax.jit(lambda z: jax.lax.fori_loop(0, 3, lambda i, z: z + 0.01 * grad(z), z))
  labels = re.findall(r'dim_labels=(\S+?),', attack.lower(x).compile().as_text())
  assert len(labels) == 4   # two layers: forward, and the input gradient of each
  assert set(labels) == {'b01f_01io->b01f'}
