"""The robust / non-robust feature distribution of Tsipras et al. (2019), §2.1.

    y ~ uniform{-1, +1},
    x_1 = +y with probability p, else -y          (robust, moderately predictive)
    x_2, ..., x_{d+1} ~ N(η·y, 1) i.i.d.          (non-robust, weakly predictive)

Registered as the dataset ``synthetic`` with p, η, d and the sample sizes in
``config.data.synthetic``. Labels are stored as class indices (y = +1 -> 1,
y = -1 -> 0) so the same engine trains on it; features are unbounded, so
attacks do not clip them to [0, 1].

Also registered: ``gaussian``, the all-Gaussian variant (EPFL lecture notes),
with D = d + 1 features x_i = a_i·y + N(0, 1), a_1 = 1 and
a_i = √(log D / (D − 1)) for i ≥ 2 (`theory.gaussian_means`).

With ``stratified_test`` the test set has exactly half of each label and, in
each, exactly round(p·n/2) points with x_1 = y: an unbiased estimate whose
variance from the coin flips of x_1 is removed, so Monte-Carlo accuracies of a
classifier that relies on x_1 are not pushed above or below p by chance.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tradeoff import data
from tradeoff import errors
from tradeoff import theory


@functools.partial(jax.jit, static_argnums=(1, 4))
def sample(key: jax.Array, n: int, p: float, eta: float, d: int
           ) -> tuple[jax.Array, jax.Array]:
  """Draws n samples of the §2.1 distribution.

  Args:
    key: PRNG key.
    n: number of samples (static).
    p: probability that x_1 agrees with y.
    eta: mean shift of each weak feature.
    d: number of weak features (static).

  Returns:
    x: f32[n, d + 1], column 0 the robust feature.
    y: i32[n] in {-1, +1}.
  """
  k_y, k_flip, k_noise = jax.random.split(key, 3)
  y = jnp.where(jax.random.bernoulli(k_y, 0.5, (n,)), 1, -1).astype(jnp.int32)
  agree = jax.random.bernoulli(k_flip, p, (n,))
  x1 = jnp.where(agree, y, -y).astype(jnp.float32)
  weak = eta * y[:, None].astype(jnp.float32) + jax.random.normal(k_noise, (n, d))
  return jnp.concatenate([x1[:, None], weak], axis=1), y


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def sample_stratified(key: jax.Array, n: int, p: float, eta: float, d: int
                      ) -> tuple[jax.Array, jax.Array]:
  """Like `sample`, with exact label and x_1-agreement counts (n must be even).

  Each label gets n/2 points; round(p·n/2) of them have x_1 = y. Rows are
  shuffled. p must be a Python float (the counts are static).
  """
  if n % 2:
    raise errors.UserError(f'sample_stratified needs an even n, got {n}.')
  half = n // 2
  agree_count = int(round(p * half))
  k_perm, k_noise = jax.random.split(key)
  y = jnp.concatenate([jnp.ones(half, jnp.int32), -jnp.ones(half, jnp.int32)])
  agree_half = jnp.arange(half) < agree_count
  agree = jnp.concatenate([agree_half, agree_half])
  x1 = jnp.where(agree, y, -y).astype(jnp.float32)
  weak = eta * y[:, None].astype(jnp.float32) + jax.random.normal(k_noise, (n, d))
  x = jnp.concatenate([x1[:, None], weak], axis=1)
  perm = jax.random.permutation(k_perm, n)
  return x[perm], y[perm]


@functools.partial(jax.jit, static_argnums=(1, 2))
def sample_gaussian(key: jax.Array, n: int, dim: int) -> tuple[jax.Array, jax.Array]:
  """n samples of x = a·y + N(0, I_D), D = dim, a = theory.gaussian_means(D).

  Returns:
    x: f32[n, D]; y: i32[n] in {-1, +1}.
  """
  k_y, k_noise = jax.random.split(key)
  y = jnp.where(jax.random.bernoulli(k_y, 0.5, (n,)), 1, -1).astype(jnp.int32)
  a = jnp.asarray(theory.gaussian_means(dim), jnp.float32)
  x = y[:, None].astype(jnp.float32) * a[None, :] + jax.random.normal(k_noise, (n, dim))
  return x, y


def _check(s) -> None:
  if not 0.5 <= s.p <= 1.0:
    raise errors.UserError(f'data.synthetic.p={s.p} must be in [0.5, 1].')
  if s.d < 1 or s.num_train < 2 or s.num_test < 1:
    raise errors.UserError(f'data.synthetic needs d >= 1, num_train >= 2, num_test >= 1; '
                     f'got d={s.d}, num_train={s.num_train}, num_test={s.num_test}.')
  if s.stratified_test and s.num_test % 2:
    raise errors.UserError(f'data.synthetic.stratified_test needs an even num_test, '
                     f'got {s.num_test}.')


def _dataset(name, draw, s, info) -> data.Dataset:
  k_train, k_test = jax.random.split(jax.random.key(s.seed))
  arrays = []
  for k, n, test in ((k_train, s.num_train, False), (k_test, s.num_test, True)):
    x, y = draw(k, n, test)
    arrays += [np.asarray(x), np.asarray((y + 1) // 2, np.int32)]
  info = {**info, 'd': s.d, 'seed': s.seed, 'num_train': s.num_train,
          'num_test': s.num_test, 'stratified_test': bool(s.stratified_test)}
  return data.Dataset(name, *arrays, num_classes=2, mean=(0.0,), std=(1.0,),
                      bounds=None, info=info)


@data.DATASETS.register('synthetic')
def load(data_cfg: ml_collections.ConfigDict) -> data.Dataset:
  """Train and test sets drawn with independent keys from `data_cfg.synthetic`."""
  s = data_cfg.synthetic
  _check(s)

  def draw(key, n, test):
    if test and s.stratified_test:
      return sample_stratified(key, n, float(s.p), s.eta, s.d)
    return sample(key, n, s.p, s.eta, s.d)

  return _dataset('synthetic', draw, s,
                  {'source': 'synthetic:tsipras2019_s2', 'p': s.p, 'eta': s.eta})


@data.DATASETS.register('gaussian')
def load_gaussian(data_cfg: ml_collections.ConfigDict) -> data.Dataset:
  """The Gaussian variant with D = data.synthetic.d + 1 features (p and η unused)."""
  s = data_cfg.synthetic
  _check(s)
  dim = s.d + 1
  return _dataset('gaussian', lambda key, n, test: sample_gaussian(key, n, dim), s,
                  {'source': 'synthetic:gaussian_variant', 'D': dim,
                   'a_weak': float(theory.gaussian_means(dim)[1])})
