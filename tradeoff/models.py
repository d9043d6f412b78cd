"""Classifiers behind a registry; every model takes pixels in [0, 1].

Normalisation (x - mean) / std is the model's first layer, so an attack's ε is
measured in pixel space as in the paper. Every module's __call__ takes
``(x, train: bool)`` and returns logits f32[B, num_outputs]; a model with
num_outputs = 1 is a binary classifier sign(f(x)) (class 1 when f(x) > 0).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from tradeoff import errors
from tradeoff import registry

MODELS: registry.Registry[Callable[..., nn.Module]] = registry.Registry('model')


def normalize(x: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
  return (x - jnp.asarray(mean, x.dtype)) / jnp.asarray(std, x.dtype)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated`` with the same values and gradients, whose gradient
  with respect to the input convolves with a kernel transposed beforehand.

  JAX's own input gradient is a convolution whose kernel has its feature axes
  swapped (XLA dim labels ``01oi``). XLA:CPU rewrites that into its fast
  (Eigen) layout at the top level of a program, but not inside a loop: inside
  ``lax.fori_loop`` — the attacks' APGD, FAB and rolled PGD loops — the input
  gradient ran 4-5× slower than the same computation unrolled. Here the kernel
  is transposed explicitly, behind an optimisation barrier that keeps XLA from
  folding the transpose back into the convolution, so every convolution is in
  the canonical layout wherever it runs.
  """
  kw = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation, feature_group_count=feature_group_count,
            batch_group_count=batch_group_count, precision=precision,
            preferred_element_type=preferred_element_type)
  dn = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)

  @jax.custom_vjp
  def conv(x, k):
    return jax.lax.conv_general_dilated(x, k, dimension_numbers=dn, **kw)

  def fwd(x, k):
    return conv(x, k), (x, k)

  def bwd(res, g):
    x, k = res
    out_axis, in_axis = dn.rhs_spec[0], dn.rhs_spec[1]
    perm = list(range(k.ndim))
    perm[out_axis], perm[in_axis] = in_axis, out_axis
    swapped = jax.lax.optimization_barrier(jnp.transpose(k, perm))
    dn_swapped = jax.lax.ConvDimensionNumbers(dn.lhs_spec, (in_axis, out_axis) + tuple(
        dn.rhs_spec[2:]), dn.out_spec)
    dx = jax.vjp(lambda x: jax.lax.conv_general_dilated(
        x, swapped, dimension_numbers=dn_swapped, **kw), x)[1](g)[0]
    dk = jax.vjp(lambda k: jax.lax.conv_general_dilated(
        x, k, dimension_numbers=dn, **kw), k)[1](g)[0]
    return dx, dk

  conv.defvjp(fwd, bwd)
  return conv(lhs, rhs)


# Every model's convolutions (same parameters and names as nn.Conv's).
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2×2 max pooling, stride 2, as reshape + max.

  Same values and gradients as ``nn.max_pool(x, (2, 2), (2, 2))``, but its
  backward pass is several times faster on CPU (no select-and-scatter).
  """
  b, h, w, c = x.shape
  if h % 2 or w % 2:
    raise errors.UserError(f'max_pool_2x2 needs even height and width, got {h}×{w}.')
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Linear(nn.Module):
  """f(x) = W·vec(x) + b, optionally on the features `keep_features` of vec(x) only.

  With keep_features the other inputs are ignored (an attack may still move
  them, to no effect), e.g. a classifier on the k most label-correlated pixels.
  """
  num_outputs: int
  mean: Sequence[float] = (0.0,)
  std: Sequence[float] = (1.0,)
  keep_features: Sequence[int] = ()

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = normalize(x, self.mean, self.std).reshape(x.shape[0], -1)
    if self.keep_features:
      x = x[:, jnp.asarray(self.keep_features, jnp.int32)]
    return nn.Dense(self.num_outputs, name='dense')(x)


class MLP(nn.Module):
  """Fully connected ReLU network with the given hidden widths."""
  num_outputs: int
  hidden: Sequence[int] = (256, 256)
  mean: Sequence[float] = (0.0,)
  std: Sequence[float] = (1.0,)

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = normalize(x, self.mean, self.std).reshape(x.shape[0], -1)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
    return nn.Dense(self.num_outputs)(x)


class MadryCNN(nn.Module):
  """The MNIST network of Madry et al. (2018), github.com/MadryLab/mnist_challenge.

  conv 32 5×5 -> ReLU -> pool 2 -> conv 64 5×5 -> ReLU -> pool 2 -> dense 1024
  -> ReLU -> dense num_outputs.
  """
  num_outputs: int
  mean: Sequence[float] = (0.0,)
  std: Sequence[float] = (1.0,)
  width: float = 1.0  # multiplies the conv and dense widths

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train
    x = normalize(x, self.mean, self.std)
    c1, c2, h = (max(1, round(n * self.width)) for n in (32, 64, 1024))
    x = max_pool_2x2(nn.relu(Conv(c1, (5, 5), padding='SAME')(x)))
    x = max_pool_2x2(nn.relu(Conv(c2, (5, 5), padding='SAME')(x)))
    x = nn.relu(nn.Dense(h)(x.reshape(x.shape[0], -1)))
    return nn.Dense(self.num_outputs)(x)


class _ResidualUnit(nn.Module):
  """Pre-activation unit of the Madry et al. CIFAR-10 ResNet (cifar10_challenge)."""
  filters: int
  stride: int
  activate_before_residual: bool
  norm: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    act = lambda z: nn.leaky_relu(z, 0.1)
    if self.activate_before_residual:
      x = act(self.norm()(x))
      shortcut = x
    else:
      shortcut = x
      x = act(self.norm()(x))
    y = Conv(self.filters, (3, 3), self.stride, padding='SAME', use_bias=False)(x)
    y = Conv(self.filters, (3, 3), 1, padding='SAME', use_bias=False)(act(self.norm()(y)))
    in_filters = shortcut.shape[-1]
    if in_filters != self.filters:
      s = self.stride
      shortcut = nn.avg_pool(shortcut, (s, s), (s, s), 'VALID')
      extra = self.filters - in_filters
      shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
    return y + shortcut


class CifarResNet(nn.Module):
  """ResNet of Madry et al. / Tsipras et al. for CIFAR-10.

  Three groups of `units` pre-activation residual units with filters
  16·widen, 32·widen, 64·widen after a 16-filter stem (the paper's network is
  widen = 1, units = 5, i.e. ResNet-32; cifar10_challenge's wide model is
  widen = 10). BatchNorm statistics are synchronised across devices through
  `bn_axis_name` when the model is trained under pmap.
  """
  num_outputs: int
  mean: Sequence[float] = (0.0,)
  std: Sequence[float] = (1.0,)
  units: int = 5
  widen: int = 1
  bn_axis_name: Any = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                epsilon=1e-5, axis_name=self.bn_axis_name if train else None)
    x = normalize(x, self.mean, self.std)
    x = Conv(16, (3, 3), padding='SAME', use_bias=False)(x)
    for group, (filters, stride) in enumerate(
        ((16 * self.widen, 1), (32 * self.widen, 2), (64 * self.widen, 2))):
      for unit in range(self.units):
        x = _ResidualUnit(filters, stride if unit == 0 else 1,
                          activate_before_residual=(group == 0 and unit == 0), norm=norm)(x)
    x = nn.leaky_relu(norm()(x), 0.1)
    return nn.Dense(self.num_outputs)(x.mean(axis=(1, 2)))


_CONV_INIT = nn.initializers.variance_scaling(2.0, 'fan_out', 'normal')  # He et al., fan out

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def _add_shortcut(x, y, stride: int, norm, conv):
  """relu(shortcut(x) + y): x itself, or a strided 1×1 convolution + BatchNorm of it
  where the block changes the shape (called inside the block's compact scope)."""
  if x.shape[-1] != y.shape[-1] or stride != 1:
    x = norm()(conv(y.shape[-1], (1, 1), stride)(x))
  return nn.relu(x + y)


class _BasicBlock(nn.Module):
  """Two 3×3 convolutions (ResNet-18/34)."""
  filters: int
  stride: int
  norm: Callable[..., nn.Module]
  conv: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.stride)(x)))
    y = self.norm()(self.conv(self.filters, (3, 3), 1)(y))
    return _add_shortcut(x, y, self.stride, self.norm, self.conv)


class _Bottleneck(nn.Module):
  """1×1, 3×3 (with the stride: ResNet v1.5, as torchvision), 1×1 ×4 (ResNet-50)."""
  filters: int
  stride: int
  norm: Callable[..., nn.Module]
  conv: Callable[..., nn.Module]

  @nn.compact
  def __call__(self, x):
    y = nn.relu(self.norm()(self.conv(self.filters, (1, 1), 1)(x)))
    y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.stride)(y)))
    y = self.norm()(self.conv(4 * self.filters, (1, 1), 1)(y))
    return _add_shortcut(x, y, self.stride, self.norm, self.conv)


RESNET_BLOCKS = {18: (_BasicBlock, (2, 2, 2, 2)), 34: (_BasicBlock, (3, 4, 6, 3)),
                 50: (_Bottleneck, (3, 4, 6, 3)), 101: (_Bottleneck, (3, 4, 23, 3))}


class ImageNetResNet(nn.Module):
  """The ImageNet ResNets of He et al. (2016) as torchvision builds them (v1.5):
  7×7/2 stem, 3×3/2 max pool, four stages of 64·2^i filters, global average pool.

  ResNet-50 is the Restricted ImageNet model of Tsipras et al. BatchNorm
  statistics are averaged over `bn_axis_name` under pmap. `dtype` is the
  computation dtype (bfloat16: mixed precision); parameters, the normalisation
  of the input and the logits stay float32.
  """
  num_outputs: int
  mean: Sequence[float] = (0.0,)
  std: Sequence[float] = (1.0,)
  depth: int = 50
  bn_axis_name: Any = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.depth not in RESNET_BLOCKS:
      raise errors.UserError(f'model.depth={self.depth}: ImageNet ResNets come in depths '
                             f'{", ".join(map(str, sorted(RESNET_BLOCKS)))}.')
    block, stages = RESNET_BLOCKS[self.depth]
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                dtype=self.dtype, param_dtype=jnp.float32,
                                axis_name=self.bn_axis_name if train else None)
    conv = lambda f, k, s: Conv(f, k, s, padding=[(k[0] // 2, k[0] // 2)] * 2,
                                use_bias=False, kernel_init=_CONV_INIT, dtype=self.dtype,
                                param_dtype=jnp.float32)
    x = normalize(x, self.mean, self.std).astype(self.dtype)
    x = nn.relu(norm()(conv(64, (7, 7), 2)(x)))
    x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for i, num_blocks in enumerate(stages):
      for j in range(num_blocks):
        x = block(64 * 2 ** i, 2 if (i > 0 and j == 0) else 1, norm, conv)(x)
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_outputs, dtype=self.dtype, param_dtype=jnp.float32)(x).astype(
        jnp.float32)


MODELS.register('linear')(Linear)
MODELS.register('mlp')(MLP)
MODELS.register('madry_cnn')(MadryCNN)
MODELS.register('cifar_resnet')(CifarResNet)
MODELS.register('imagenet_resnet')(ImageNetResNet)

# Which config.model fields each model takes (besides num_outputs / mean / std).
_MODEL_FIELDS = {'linear': ('keep_features',), 'mlp': ('hidden',), 'madry_cnn': ('width',),
                 'cifar_resnet': ('units', 'widen'), 'imagenet_resnet': ('depth',)}


def build(model_cfg: ml_collections.ConfigDict, num_classes: int,
          mean: Sequence[float], std: Sequence[float], bn_axis_name=None) -> nn.Module:
  """Instantiates `model_cfg.name` for a dataset with `num_classes` classes.

  Args:
    model_cfg: config.model; `num_outputs` 0 means one logit per class, 1 a
      single binary score (valid only for 2 classes).
    num_classes: classes of the (possibly class-subset) dataset.
    mean: per-channel input mean, used when model_cfg.normalize.
    std: per-channel input std.
    bn_axis_name: pmap axis over which BatchNorm statistics are averaged.
  """
  cls = MODELS.get(model_cfg.name)
  num_outputs = model_cfg.num_outputs or num_classes
  if num_outputs not in (num_classes, 1) or (num_outputs == 1 and num_classes != 2):
    raise errors.UserError(f'model.num_outputs={model_cfg.num_outputs} is invalid for '
                     f'{num_classes} classes: use 0 (= {num_classes}) or, for 2 classes, 1.')
  kwargs = {f: model_cfg[f] for f in _MODEL_FIELDS.get(model_cfg.name, ())}
  if model_cfg.name in ('cifar_resnet', 'imagenet_resnet'):
    kwargs['bn_axis_name'] = bn_axis_name
  dtype = model_cfg.get('dtype', 'float32')
  registry.check_choice('model.dtype', dtype, sorted(DTYPES))
  if dtype != 'float32':
    if model_cfg.name != 'imagenet_resnet':
      raise errors.UserError(f'model.dtype={dtype!r} is supported by imagenet_resnet only; '
                             f'{model_cfg.name} computes in float32.')
    kwargs['dtype'] = DTYPES[dtype]
  if not model_cfg.normalize:
    mean, std = (0.0,), (1.0,)
  return cls(num_outputs=num_outputs, mean=tuple(mean), std=tuple(std), **kwargs)


def build_pair(model_cfg: ml_collections.ConfigDict, num_classes: int,
               mean: Sequence[float], std: Sequence[float], bn_axis_name=None
               ) -> tuple[nn.Module, nn.Module]:
  """(the model as training computes it, the same model as evaluation computes it:
  `eval_config`, the same object when the dtypes agree); arguments as `build`."""
  module = build(model_cfg, num_classes, mean, std, bn_axis_name)
  eval_cfg = eval_config(model_cfg)
  if eval_cfg.dtype == model_cfg.get('dtype', 'float32'):
    return module, module
  return module, build(eval_cfg, num_classes, mean, std, bn_axis_name)


def eval_config(model_cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """config.model as evaluation builds it: computing in `eval_dtype` (float32 by
  default, so a bf16-trained model is attacked with f32 gradients), or in the
  training dtype when eval_dtype is ''."""
  eval_dtype = model_cfg.get('eval_dtype', 'float32')
  registry.check_choice('model.eval_dtype', eval_dtype, [''] + sorted(DTYPES))
  out = ml_collections.ConfigDict(model_cfg.to_dict())
  out.dtype = eval_dtype or model_cfg.get('dtype', 'float32')
  return out


def apply(module: nn.Module, params, model_state, x: jax.Array, train: bool):
  """Runs `module`; in training mode also returns the updated model state.

  Args:
    module: a model from `build`.
    params: the 'params' collection.
    model_state: the other collections (e.g. {'batch_stats': ...}), maybe {}.
    x: f32[B, ...] inputs in [0, 1].
    train: BatchNorm uses batch statistics and updates its averages if True.

  Returns:
    (logits f32[B, num_outputs], new_model_state).
  """
  variables = {'params': params, **model_state}
  if train and model_state:
    logits, new_state = module.apply(variables, x, train=True, mutable=list(model_state))
    return logits, dict(new_state)
  return module.apply(variables, x, train=train), model_state


def predict(logits: jax.Array) -> jax.Array:
  """Class indices i32[B]; a single logit means class 1 iff logit > 0."""
  if logits.shape[-1] == 1:
    return (logits[..., 0] > 0).astype(jnp.int32)
  return jnp.argmax(logits, axis=-1).astype(jnp.int32)
