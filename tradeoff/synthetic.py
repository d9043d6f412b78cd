"""The robust / non-robust feature distribution of Tsipras et al. (2019), §2.1.

    y ~ uniform{-1, +1},
    x_1 = +y with probability p, else -y          (robust, moderately predictive)
    x_2, ..., x_{d+1} ~ N(η·y, 1) i.i.d.          (non-robust, weakly predictive)

Registered as the dataset ``synthetic`` with p, η, d and the sample sizes in
``config.data.synthetic``. Labels are stored as class indices (y = +1 -> 1,
y = -1 -> 0) so the same engine trains on it; features are unbounded, so
attacks do not clip them to [0, 1].
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tradeoff import data


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


@data.DATASETS.register('synthetic')
def load(data_cfg: ml_collections.ConfigDict) -> data.Dataset:
  """Train and test sets drawn with independent keys from `data_cfg.synthetic`."""
  s = data_cfg.synthetic
  if not 0.5 <= s.p <= 1.0:
    raise ValueError(f'data.synthetic.p={s.p} must be in [0.5, 1].')
  if s.d < 1 or s.num_train < 2 or s.num_test < 1:
    raise ValueError(f'data.synthetic needs d >= 1, num_train >= 2, num_test >= 1; '
                     f'got d={s.d}, num_train={s.num_train}, num_test={s.num_test}.')
  key = jax.random.key(s.seed)
  k_train, k_test = jax.random.split(key)
  arrays = []
  for k, n in ((k_train, s.num_train), (k_test, s.num_test)):
    x, y = sample(k, n, s.p, s.eta, s.d)
    arrays += [np.asarray(x), np.asarray((y + 1) // 2, np.int32)]
  info = {'source': 'synthetic:tsipras2019_s2', 'p': s.p, 'eta': s.eta, 'd': s.d,
          'seed': s.seed}
  return data.Dataset('synthetic', *arrays, num_classes=2, mean=(0.0,), std=(1.0,),
                      bounds=None, info=info)
