"""Randomized smoothing: CERTIFY and PREDICT against the closed form of a linear
base classifier, abstention, determinism, and the noise-augmentation loss."""
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats

from tradeoff import attacks
from tradeoff import configlib
from tradeoff import experiment
from tradeoff import losses
from tradeoff import models
from tradeoff import smoothing

SIGMA = 0.5
D = 6


def _linear():
  """A binary linear base classifier f(x) = 1[w·x + b > 0] on D features."""
  module = models.Linear(num_outputs=1)
  w = np.array([0.8, -0.6, 0.4, 0.0, 0.2, -0.3], np.float32)
  b = np.float32(0.1)
  params = {'dense': {'kernel': jnp.asarray(w[:, None]), 'bias': jnp.asarray([b])}}
  return module, params, w, b


def _points(w, b, margins):
  """One point per wanted margin w·x + b (x along w)."""
  unit = w / np.linalg.norm(w)
  return np.stack([(m - b) / np.linalg.norm(w) * unit for m in margins]).astype(np.float32)


def test_certify_matches_the_closed_form_of_a_linear_base_classifier():
  module, params, w, b = _linear()
  norm_w = float(np.linalg.norm(w))
  # Distances to the boundary in units of σ: 0 (on it), then 0.5σ .. 3σ either side.
  margins = np.array([0.0, 0.5, -0.5, 1.0, -1.5, 2.0, 3.0, -3.0]) * SIGMA * norm_w
  x = _points(w, b, margins)
  n, alpha = 20_000, 0.001
  g = smoothing.Smoothed(module, num_classes=2, sigma=SIGMA, chunk=500, batch_size=8)
  pred, radius = g.certify(params, {}, x, jax.random.key(0), n0=500, n=n, alpha=alpha)

  p_a = stats.norm.cdf(np.abs(margins) / (SIGMA * norm_w))   # P(f(x + σε) = top class)
  exact = np.abs(margins) / norm_w                            # σ·Φ⁻¹(p_A): the distance
  # The Clopper-Pearson bound never overshoots the true p_A (w.p. 1 - α), and with
  # a count 4 standard deviations below its mean it still reaches this far:
  low_count = np.floor(n * p_a - 4 * np.sqrt(n * p_a * (1 - p_a)))
  p_low = smoothing.lower_confidence_bound(low_count, n, alpha)
  least = np.where(p_low > 0.5, SIGMA * stats.norm.ppf(np.clip(p_low, 0.5, None)), 0.0)

  assert pred[0] == smoothing.ABSTAIN and radius[0] == 0.0   # on the boundary
  side = (margins[1:] > 0).astype(np.int32)
  assert np.array_equal(pred[1:], side)
  assert np.all(radius[1:] <= exact[1:] + 1e-6), (radius, exact)
  assert np.all(radius[1:] >= least[1:] - 1e-6), (radius, least)
  # At 3σ the estimate is within a few per cent of the distance itself.
  np.testing.assert_allclose(radius[-2:], exact[-2:], rtol=0.1)


def test_predict_abstains_on_the_boundary_and_answers_away_from_it():
  module, params, w, b = _linear()
  margins = np.array([0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 2.0, -2.0]) * SIGMA * np.linalg.norm(w)
  g = smoothing.Smoothed(module, num_classes=2, sigma=SIGMA, chunk=500, batch_size=8)
  pred = g.predict(params, {}, _points(w, b, margins), jax.random.key(1), n=5000,
                   alpha=0.001)
  assert np.array_equal(pred[:4], [smoothing.ABSTAIN] * 4)
  assert np.array_equal(pred[4:], [1, 0, 1, 0])


def test_counts_depend_on_the_example_not_on_the_batch():
  module = models.MLP(num_outputs=5, hidden=(8,))
  x = np.random.default_rng(0).random((10, D), np.float32)
  params = module.init(jax.random.key(0), x)['params']
  key = jax.random.key(3)
  big = smoothing.Smoothed(module, 5, sigma=0.3, chunk=50, batch_size=10)
  small = smoothing.Smoothed(module, 5, sigma=0.3, chunk=50, batch_size=4)
  counts = big.counts(params, {}, x, 200, key)
  assert counts.shape == (10, 5) and np.all(counts.sum(axis=1) == 200)
  np.testing.assert_array_equal(counts, small.counts(params, {}, x, 200, key))
  # Example i draws its own noise: the last four alone, numbered 6..9, count the same.
  np.testing.assert_array_equal(counts[6:], small.counts(params, {}, x[6:], 200, key,
                                                         first_index=6))


def test_clopper_pearson_bound_and_certified_accuracy():
  np.testing.assert_allclose(smoothing.lower_confidence_bound(100, 100, 0.01), 0.01 ** 0.01)
  assert smoothing.lower_confidence_bound(0, 100, 0.01) == 0.0
  # Coverage: the bound is the α-quantile of Beta(k, n - k + 1), so P(p ≥ bound) = 1 - α there.
  k, n, alpha = 37, 120, 0.05
  bound = smoothing.lower_confidence_bound(k, n, alpha)
  np.testing.assert_allclose(stats.binom.sf(k - 1, n, bound), alpha, rtol=1e-6)
  counts0 = np.array([[90, 10], [90, 10], [50, 50]])   # selection: class 0 each time
  counts = np.array([[990, 10], [400, 600], [500, 500]])
  pred, radius = smoothing.certify_from_counts(counts0, counts, 1.0, 0.001)
  assert pred[0] == 0
  np.testing.assert_allclose(radius[0], stats.norm.ppf(stats.beta.ppf(0.001, 990, 11)))
  assert pred[1] == smoothing.ABSTAIN and pred[2] == smoothing.ABSTAIN   # its count below half
  acc = smoothing.certified_accuracy(np.array([0, 1, -1]), np.array([1.0, 0.5, 0.0]),
                                     np.array([0, 1, 1]), [0.0, 0.5, 0.75, 2.0])
  np.testing.assert_allclose(acc, [2 / 3, 2 / 3, 1 / 3, 0.0])


def test_settings_are_checked():
  module, _, _, _ = _linear()
  with pytest.raises(ValueError, match='sigma > 0; got sigma=0'):
    smoothing.Smoothed(module, 2, sigma=0.0)
  g = smoothing.Smoothed(module, 2, sigma=0.5, chunk=100, batch_size=2)
  with pytest.raises(ValueError, match='n=150 must be a multiple of chunk'):
    g.certify({}, {}, np.zeros((2, D), np.float32), jax.random.key(0), n0=100, n=150,
              alpha=0.001)
  with pytest.raises(ValueError, match='alpha=0.7'):
    g.predict({}, {}, np.zeros((2, D), np.float32), jax.random.key(0), n=100, alpha=0.7)


def test_gaussian_augment_trains_on_noisy_inputs():
  module = models.MLP(num_outputs=3, hidden=(8,))
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.random((16, D), np.float32)),
           'label': jnp.asarray(rng.integers(0, 3, 16).astype(np.int32))}
  params = module.init(jax.random.key(0), batch['image'])['params']
  ctx = losses.Context(module=module, attack=attacks.Attack(),
                       config=ml_collections.ConfigDict({'sigma': 0.25}))
  key = jax.random.key(7)
  loss, _ = losses.get('gaussian_augment')(params, {}, batch, key, ctx)
  noisy = batch['image'] + 0.25 * jax.random.normal(key, batch['image'].shape)
  logits = module.apply({'params': params}, noisy)
  expected = jnp.mean(-jnp.take_along_axis(jax.nn.log_softmax(logits),
                                           batch['label'][:, None], axis=1))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  clean, _ = losses.get('standard')(params, {}, batch, key, ctx)
  assert abs(float(clean) - float(loss)) > 1e-4


def test_config_rejects_noise_training_without_sigma_or_with_an_attack():
  c = configlib.load('configs/mnist_linf.py')
  c.loss.name = 'gaussian_augment'
  c.eps = 0.0
  with pytest.raises(ValueError, match='loss.sigma > 0.*loss.sigma=0.0'):
    experiment.validate(c)
  c.loss.sigma = 0.25
  experiment.validate(c)
  c.attack.eps = 0.3
  with pytest.raises(ValueError, match="'gaussian_augment' does not run the training attack, "
                                       "but attack.eps=0.3"):
    experiment.validate(c)


def test_certify_figure_from_a_sweep_of_noise_trained_runs(tmp_path):
  from tradeoff import train  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import common  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import smoothing as smoothing_fig  # pylint: disable=g-import-not-at-top
  import tiny_configs  # pylint: disable=g-import-not-at-top
  runs = []
  for sigma in (0.25, 0.5):
    c = tiny_configs.tiny_config()
    c.loss.name, c.loss.sigma, c.eps = 'gaussian_augment', sigma, 0.0
    wd = str(tmp_path / f'sigma={sigma}')
    train.train_and_evaluate(c, wd)
    runs.append({'workdir': wd, 'status': 'finished', 'point': {'loss.sigma': sigma}})
  sweep = common.write_json(str(tmp_path / 'tiny_smoothing.json'),
                            {'sweep': 'tiny_smoothing', 'runs': runs[::-1]})
  paths = smoothing_fig.run(sweep, str(tmp_path), str(tmp_path), False, num_examples=20,
                            n0=20, n=200, predict_n=100, chunk=20, batch_size=10)
  res = common.read_json(paths[0])
  assert [m['sigma'] for m in res['models']] == [0.25, 0.5]
  for m in res['models']:
    acc = list(m['certified_accuracy'].values())
    assert acc == sorted(acc, reverse=True) and acc[-1] == 0.0  # 4σ is out of n = 200's reach
    assert len(m['radius']) == 20 and 0.0 <= m['smoothed_clean_accuracy'] <= 1.0
    # Certified at radius 0 = certified with the right class; recomputed from the kept examples.
    right = np.array(m['prediction']) == np.array(m['labels'])
    assert m['certified_accuracy']['0.0'] == np.mean(right)
  assert res['max_certifiable_radius_over_sigma'] == pytest.approx(
      stats.norm.ppf(0.001 ** (1 / 200)))
  assert os.path.exists(paths[1])
  c = tiny_configs.tiny_config()
  wd = str(tmp_path / 'plain')
  train.train_and_evaluate(c, wd)
  with pytest.raises(ValueError, match="trained with loss 'pgd_at'.*gaussian_augment"):
    smoothing_fig.certify_run(wd, 10, 20, 20, 20, 0.001, 20, 10)
