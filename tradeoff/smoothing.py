r"""Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019): PREDICT and CERTIFY.

The smoothed classifier of a base classifier f is

    g(x) = argmax_c P_{ε ~ N(0, σ²I)}(f(x + ε) = c),

and if the top class has probability at least p_A > 1/2, g is constant on the
ℓ2 ball of radius σ·Φ⁻¹(p_A) around x (their Theorem 1). Both procedures
estimate class probabilities by counting f's predictions on Gaussian copies
of x (noise in pixel space, not clipped; the model normalises inside, as
everywhere in tradeoff):

- CERTIFY(x): n0 selection samples pick the top class c_A; n fresh estimation
  samples give its count n_A; p_A's one-sided (1 - α) Clopper-Pearson lower
  bound is Beta⁻¹(α; n_A, n - n_A + 1). Below 1/2 it abstains; otherwise it
  returns c_A with radius σ·Φ⁻¹(p_A lower).
- PREDICT(x): n samples; the two top counts n_A, n_B; abstain unless a
  two-sided binomial test of n_A out of n_A + n_B against 1/2 rejects at α.

Counting is one jitted, pmapped step over a batch of images: a `lax.fori_loop`
over chunks of noise samples, each chunk one forward pass of batch × chunk
images. Example i's noise is drawn from fold_in(key, i) (i its index in the
test set), so a certificate depends on the seed and the example only, not on
the batch size or the number of devices.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from tradeoff import data
from tradeoff import errors
from tradeoff import models
from tradeoff import parallel
from tradeoff import registry

AXIS = parallel.AXIS
ABSTAIN = -1


def check_noise(sigma: float, chunk: int) -> None:
  if not sigma > 0:
    raise errors.UserError(f'Randomized smoothing needs a noise level sigma > 0; got '
                           f'sigma={sigma}.')
  registry.check_at_least('Randomized smoothing', chunk=(chunk, 1))


def check_samples(alpha: float, chunk: int, **counts: int) -> None:
  """The level alpha and the sample counts (e.g. n0=..., n=...) of one procedure."""
  registry.check_at_least('Randomized smoothing', **{k: (v, 1) for k, v in counts.items()})
  if not 0.0 < alpha < 0.5:
    raise errors.UserError(f'Randomized smoothing needs 0 < alpha < 0.5; got alpha={alpha}.')
  for name, count in counts.items():
    if count % chunk:
      raise errors.UserError(f'Randomized smoothing draws noise in chunks of {chunk}: {name}='
                             f'{count} must be a multiple of chunk.')


def make_count_step(module: nn.Module, num_classes: int, chunk: int) -> Callable:
  """pmapped (params, model_state, x f32[D, B, ...], index i32[D, B], sigma, num_chunks, key)
  -> counts i32[D, B, num_classes]: how often f(x + σε) predicts each class
  over num_chunks · chunk noise draws per example."""

  def count_step(params, model_state, x, index, sigma, num_chunks, key):
    b = x.shape[0]
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, index)

    def body(j, counts):
      noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, j),
                                                   (chunk,) + x.shape[1:], x.dtype))(keys)
      noisy = (x[:, None] + sigma * noise).reshape((b * chunk,) + x.shape[1:])
      logits = models.apply(module, params, model_state, noisy, train=False)[0]
      pred = models.predict(logits).reshape(b, chunk)
      return counts + jax.nn.one_hot(pred, num_classes, dtype=jnp.int32).sum(axis=1)

    return jax.lax.fori_loop(0, num_chunks, body, jnp.zeros((b, num_classes), jnp.int32))

  return jax.pmap(count_step, axis_name=AXIS, in_axes=(0, 0, 0, 0, None, None, None))


def sample_counts(count_step: Callable, params, model_state, x: np.ndarray, num_samples: int,
                  chunk: int, sigma: float, batch_size: int, key: jax.Array,
                  first_index: int = 0) -> np.ndarray:
  """Class counts i32[N, K] of f on num_samples Gaussian copies of each of x's N
  images (example i of x is test example first_index + i for the noise draws).

  `params` and `model_state` are replicated over the local devices.
  """
  num_devices = jax.local_device_count()
  index = np.arange(first_index, first_index + len(x), dtype=np.int32)
  out = []
  # Batches padded to the compiled shape (the example indices ride as labels); the
  # padding's counts are dropped.
  for batch in data.eval_batches(x, index, batch_size):
    sharded = parallel.shard({'x': batch['image'], 'i': batch['label']}, num_devices)
    counts = count_step(params, model_state, sharded['x'], sharded['i'], jnp.float32(sigma),
                        num_samples // chunk, key)
    out.append(np.asarray(counts).reshape(batch_size, -1)[:int(batch['mask'].sum())])
  return np.concatenate(out)


def lower_confidence_bound(successes: np.ndarray, trials, alpha: float) -> np.ndarray:
  """One-sided (1 - alpha) Clopper-Pearson lower bound of a binomial proportion."""
  successes = np.asarray(successes)
  bound = stats.beta.ppf(alpha, np.maximum(successes, 1), trials - successes + 1)
  return np.where(successes > 0, bound, 0.0)


def certify_from_counts(counts0: np.ndarray, counts: np.ndarray, sigma: float,
                        alpha: float) -> tuple[np.ndarray, np.ndarray]:
  """CERTIFY from selection counts [N, K] and estimation counts [N, K]:
  (prediction i32[N], ABSTAIN where abstaining; radius f64[N], 0 there)."""
  top = counts0.argmax(axis=1)
  n_top = np.take_along_axis(counts, top[:, None], axis=1)[:, 0]
  p_lower = lower_confidence_bound(n_top, counts.sum(axis=1), alpha)
  certified = p_lower >= 0.5
  radius = np.where(certified, sigma * stats.norm.ppf(np.clip(p_lower, 0.5, None)), 0.0)
  return np.where(certified, top, ABSTAIN).astype(np.int32), radius


def predict_from_counts(counts: np.ndarray, alpha: float) -> np.ndarray:
  """PREDICT from counts [N, K]: the top class, or ABSTAIN where a two-sided
  binomial test of the top two counts does not reject p = 1/2 at level alpha."""
  order = np.argsort(-counts, axis=1, kind='stable')
  top, second = order[:, 0], order[:, 1]
  n_a = np.take_along_axis(counts, top[:, None], axis=1)[:, 0]
  n_b = np.take_along_axis(counts, second[:, None], axis=1)[:, 0]
  p = np.array([stats.binomtest(int(a), int(a + b), 0.5).pvalue if a + b else 1.0
                for a, b in zip(n_a, n_b)])
  return np.where(p <= alpha, top, ABSTAIN).astype(np.int32)


class Smoothed:
  """The smoothed classifier of a trained base model, with CERTIFY and PREDICT.

      g = Smoothed(module, num_classes, sigma=0.25)
      pred, radius = g.certify(params, model_state, x, key, n0=100, n=100_000, alpha=0.001)

  `params` / `model_state` are those of one device (they are replicated here).
  """

  def __init__(self, module: nn.Module, num_classes: int, sigma: float, chunk: int = 100,
               batch_size: int = 100):
    check_noise(sigma, chunk)
    self.sigma, self.chunk, self.num_classes = float(sigma), chunk, num_classes
    num_devices = jax.local_device_count()
    if batch_size % num_devices:
      raise errors.UserError(f'batch_size={batch_size} must be a multiple of the '
                             f'{num_devices} local devices.')
    self.batch_size = batch_size
    self._step = make_count_step(module, max(num_classes, 2), chunk)

  def counts(self, params, model_state, x, num_samples: int, key, first_index: int = 0):
    n_dev = jax.local_device_count()
    return sample_counts(self._step, parallel.replicate(params, n_dev),
                         parallel.replicate(model_state, n_dev), x, num_samples, self.chunk,
                         self.sigma, self.batch_size, key, first_index)

  def certify(self, params, model_state, x, key, n0: int, n: int, alpha: float,
              first_index: int = 0):
    check_samples(alpha, self.chunk, n0=n0, n=n)
    k0, k1 = jax.random.split(key)
    counts0 = self.counts(params, model_state, x, n0, k0, first_index)
    counts = self.counts(params, model_state, x, n, k1, first_index)
    return certify_from_counts(counts0, counts, self.sigma, alpha)

  def predict(self, params, model_state, x, key, n: int, alpha: float, first_index: int = 0):
    check_samples(alpha, self.chunk, n=n)
    return predict_from_counts(self.counts(params, model_state, x, n, key, first_index), alpha)


def certified_accuracy(prediction: np.ndarray, radius: np.ndarray, labels: np.ndarray,
                       radii) -> np.ndarray:
  """Fraction of examples certified correct at ℓ2 radius ≥ r, for each r in radii."""
  correct = prediction == labels
  return np.array([float(np.mean(correct & (radius >= r))) for r in radii])
