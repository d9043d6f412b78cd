"""Figure helpers of §3 on tiny inputs, and the top-k linear model."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tradeoff import models
from tradeoff.figures import images
from tradeoff.figures import robust_features as rf


def test_normalize_gradient_image_clips_at_3_sigma_and_rescales():
  g = np.zeros((4, 4, 3))
  g[0, 0, 0] = 100.0  # one outlier
  out = images.normalize_gradient_image(g)
  assert out.min() >= 0 and out.max() <= 1 and out[0, 0, 0] == 1.0
  mu, sd = g.mean(), g.std()
  assert out[1, 1, 1] == pytest.approx((0 - (mu - 3 * sd)) / (6 * sd))
  np.testing.assert_array_equal(images.normalize_gradient_image(np.ones((2, 2))), 0.5)


def test_signed_gradient_rgb_colours_by_sign():
  rgb = images.signed_gradient_rgb(np.array([[1.0, -1.0, 0.0]]))
  np.testing.assert_allclose(rgb[0, 0], [1, 0, 0])  # positive: red
  np.testing.assert_allclose(rgb[0, 1], [0, 0, 1])  # negative: blue
  np.testing.assert_allclose(rgb[0, 2], [1, 1, 1])  # zero: white


def test_interpolate_has_both_endpoints_and_even_spacing():
  x, x_adv = np.zeros((2, 2)), np.full((2, 2), 4.0)
  path = images.interpolate(x, x_adv, 20)
  assert path.shape == (20, 2, 2)
  np.testing.assert_array_equal(path[0], x)
  np.testing.assert_array_equal(path[-1], x_adv)
  np.testing.assert_allclose(np.diff(path[:, 0, 0]), 4.0 / 19)
  with pytest.raises(ValueError, match='num >= 2'):
    images.interpolate(x, x_adv, 1)


def test_correlation_top_k_and_weight_mass():
  rng = np.random.default_rng(0)
  y = rng.integers(0, 2, 500)
  x = rng.normal(size=(500, 5))
  x[:, 3] += 3 * y       # strongly correlated
  x[:, 1] -= 1 * y       # negatively correlated
  x[:, 4] = 1.0          # constant
  corr = rf.pixel_label_correlation(x, y)
  assert corr[3] > 0.7 and corr[1] < -0.3 and corr[4] == 0
  np.testing.assert_array_equal(rf.top_k_features(corr, 2), [1, 3])
  assert set(rf.top_k_features(corr, 1)) == {3}
  np.testing.assert_array_equal(rf.top_k_features(np.zeros(4), 2), [0, 1])  # ties: low index
  with pytest.raises(ValueError, match='k=6'):
    rf.top_k_features(corr, 6)
  w = np.array([1.0, 1.0, 0.0, 2.0, 0.0])
  assert rf.weight_mass_below(w, corr, 0.2) == pytest.approx(0.25)  # only feature 0 is weak


def test_linear_model_on_kept_features_ignores_the_others():
  cfg = ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 1, 'normalize': False,
                                   'keep_features': (1, 3)})
  module = models.build(cfg, 2, (0.0,), (1.0,))
  x = jnp.arange(8.0).reshape(2, 4)
  params = module.init(jax.random.key(0), x)['params']
  assert params['dense']['kernel'].shape == (2, 1)
  moved = x.at[:, 0].add(5.0).at[:, 2].add(-7.0)
  np.testing.assert_array_equal(module.apply({'params': params}, x),
                                module.apply({'params': params}, moved))


def test_binary_mnist_figure_redraws_from_the_committed_result_file(tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  results_dir = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'figures', 'results')
  if not os.path.exists(os.path.join(results_dir, 'binary_mnist.json')):
    pytest.skip('binary_mnist.json not generated in this checkout')
  path, = rf.run(str(tmp_path / 'runs'), results_dir, str(tmp_path), plot_only=True)
  assert os.path.getsize(path) > 20_000 and not os.path.exists(tmp_path / 'runs')
