"""Square Attack: invariants, the schedule, and the gradient-masking canary."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import errors
from tradeoff.attacks import square
import tiny_models


def test_window_share_halves_on_the_papers_schedule():
  shares = [float(square.window_share(jnp.asarray(i), 10000, 0.8)) for i in (0, 10, 11, 51, 9000)]
  assert shares == pytest.approx([0.8, 0.8, 0.4, 0.2, 0.8 / 2 ** 9])
  assert float(square.window_share(jnp.asarray(6), 500, 0.8)) == pytest.approx(0.2)  # rescaled
  assert float(square.window_share(jnp.asarray(6), 500, 0.8, rescale=False)) == pytest.approx(0.8)
  assert float(square.window_share(jnp.asarray(4001), 5000, 0.8, rescale=False)) == pytest.approx(
      0.8 / 2 ** 7)   # AutoAttack standard: 5000 queries on the unscaled schedule


def _images_and_model(seed=0):
  """A small CNN-free classifier of 8×8 one-channel images of three blob classes."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 3, 600).astype(np.int32)
  means = np.stack([np.full((8, 8, 1), v) for v in (0.3, 0.5, 0.7)])
  x = np.clip(means[y] + 0.05 * rng.normal(size=(600, 8, 8, 1)), 0, 1).astype(np.float32)
  return tiny_models.train_mlp(x, y, num_classes=3, hidden=32, steps=300, seed=seed,
                               keep=200)


def _robust(atk, logits_fn, x, y):
  x_adv = jax.jit(lambda a, b: atk(logits_fn, a, b, jax.random.key(0)))(x, y)
  return float(np.mean(np.argmax(logits_fn(np.asarray(x_adv)), -1) == y)), np.asarray(x_adv)


def test_square_stays_in_ball_and_box_and_finds_adversarial_examples():
  logits_fn, x, y = _images_and_model()
  acc, x_adv = _robust(attacks.Square(eps=0.12, num_queries=300), logits_fn, x, y)
  assert np.abs(x_adv - x).max() <= 0.12 + 1e-6
  assert x_adv.min() >= 0 and x_adv.max() <= 1
  assert acc < 0.9   # it finds something without a single gradient


def test_gradient_masking_fools_gradient_attacks_but_not_square():
  """The canary: the same network behind a stop_gradient has useless input
  gradients, so PGD and APGD see zero gradients; Square only needs scores."""
  logits_fn, x, y = _images_and_model()
  masked = lambda z: logits_fn(jax.lax.stop_gradient(z))
  eps = 0.12
  honest_pgd, _ = _robust(attacks.Attack(eps=eps, num_steps=20, step_size=2.5 * eps / 20),
                          logits_fn, x, y)
  masked_pgd, _ = _robust(attacks.Attack(eps=eps, num_steps=20, step_size=2.5 * eps / 20),
                          masked, x, y)
  masked_apgd, _ = _robust(attacks.APGD(eps=eps, num_steps=20), masked, x, y)
  masked_square, _ = _robust(attacks.Square(eps=eps, num_queries=300), masked, x, y)
  assert masked_pgd > honest_pgd + 0.2 and masked_apgd > honest_pgd + 0.2   # fooled
  assert masked_square < masked_pgd - 0.2 and masked_square < masked_apgd - 0.2


def test_bad_square_settings_are_named():
  with pytest.raises(errors.UserError, match="Unknown attack norm 'l1'"):
    attacks.Square(norm='l1', eps=0.5)
  with pytest.raises(errors.UserError, match='images'):
    attacks.Square(eps=0.1)(lambda z: z, jnp.zeros((2, 5)), jnp.zeros(2, jnp.int32),
                            jax.random.key(0))


@pytest.mark.parametrize('s', [1, 3, 5, 6, 11, 25])
def test_l2_window_pattern_is_the_papers_block_wherever_it_is_drawn(s):
  """The traced block of the ℓ2 loop equals the static one (pseudo_gaussian),
  which follows the reference: rings of 1/(k+1)², halves of opposite sign."""
  h = w = 28
  table = jnp.asarray(square._sum_inverse_squares(h), jnp.float32)
  rows, cols = jnp.arange(h)[None, :, None, None], jnp.arange(w)[None, None, :, None]
  r0, c0 = 2, 28 - s
  inside = (rows >= r0) & (rows < r0 + s) & (cols >= c0) & (cols < c0 + s)
  got = np.asarray(square.window_pattern(inside, rows - r0, cols - c0, jnp.asarray(s), table))
  want = np.zeros((h, w))
  want[r0:r0 + s, c0:c0 + s] = square.pseudo_gaussian(s)
  np.testing.assert_allclose(got[0, :, :, 0], want, atol=1e-6)
  block = square.pseudo_gaussian(5)
  assert np.sum(block ** 2) == pytest.approx(1.0)
  assert block[1, 2] == block[:2].max() and block[3, 2] == block[2:].min()   # ring centres


def test_l2_square_stays_in_ball_and_box_and_sees_through_masked_gradients():
  logits_fn, x, y = _images_and_model()
  eps = 1.0
  masked = lambda z: logits_fn(jax.lax.stop_gradient(z))
  acc, x_adv = _robust(attacks.Square(norm='l2', eps=eps, num_queries=300), masked, x, y)
  norms = np.sqrt(((x_adv - x) ** 2).reshape(len(x), -1).sum(1))
  assert norms.max() <= eps * (1 + 1e-5)
  assert x_adv.min() >= 0 and x_adv.max() <= 1
  masked_apgd, _ = _robust(attacks.APGD(norm='l2', eps=eps, num_steps=20), masked, x, y)
  assert masked_apgd == 1.0 and acc < 0.9   # gradients useless; scores are enough


@pytest.mark.parametrize('norm,eps', [('linf', 0.12), ('l2', 1.0)])
def test_square_passes_no_gradient(norm, eps):
  logits_fn, x, y = _images_and_model()
  atk = attacks.Square(norm=norm, eps=eps, num_queries=5)
  grad = jax.grad(lambda a: jnp.sum(atk(logits_fn, a, y[:8], jax.random.key(0))))(x[:8])
  np.testing.assert_array_equal(grad, 0.0)


def _reference_l2_update(delta, vh, vw, vh2, vw2, s, block, eps):
  """The reference implementation's ℓ2 update (fra31/auto-attack square.py, after
  its 2021 'small fix square l2'), transcribed to NumPy on NCHW arrays."""
  c = delta.shape[1]
  delta = delta.copy()
  lp = lambda d: np.sqrt((d ** 2).sum(axis=(1, 2, 3), keepdims=True))
  norms_window_1 = np.sqrt((delta[:, :, vh:vh + s, vw:vw + s] ** 2).sum(axis=(-2, -1),
                                                                         keepdims=True))
  mask = np.zeros_like(delta)
  mask[:, :, vh:vh + s, vw:vw + s] = 1.0
  mask[:, :, vh2:vh2 + s, vw2:vw2 + s] = 1.0
  norms_image, norms_windows = lp(delta), lp(delta * mask)
  new = block + delta[:, :, vh:vh + s, vw:vw + s] / (1e-12 + norms_window_1)
  new = new / (1e-12 + np.sqrt((new ** 2).sum(axis=(-2, -1), keepdims=True))) * np.sqrt(
      np.maximum(eps ** 2 - norms_image ** 2, 0.0) / c + norms_windows ** 2)
  delta[:, :, vh2:vh2 + s, vw2:vw2 + s] = 0.0
  delta[:, :, vh:vh + s, vw:vw + s] = new
  return delta


@pytest.mark.parametrize('shrink', [1.0, 0.3])   # δ on the sphere, and well inside it
def test_l2_update_is_the_reference_on_three_channel_images(shrink):
  """On colour images the window norms are per channel: with one channel the
  per-channel and all-channel forms coincide, so this test uses three, with
  channels of very different size."""
  rng = np.random.default_rng(0)
  b, h, w, c, s, eps = 2, 8, 8, 3, 3, 1.5
  delta = rng.normal(size=(b, h, w, c)) * np.array([1.0, 0.1, 3.0])
  delta *= shrink * eps / np.sqrt((delta ** 2).sum(axis=(1, 2, 3), keepdims=True))
  (vh, vw), (vh2, vw2) = (1, 4), (5, 0)
  block = square.pseudo_gaussian(s)[None, None] * rng.choice([-1.0, 1.0], size=(b, c, 1, 1))
  want = _reference_l2_update(delta.transpose(0, 3, 1, 2), vh, vw, vh2, vw2, s, block, eps)

  def window(r, q):
    m = np.zeros((b, h, w, 1), bool)
    m[:, r:r + s, q:q + s] = True
    return m
  in1 = window(vh, vw)
  placed = np.zeros((b, h, w, c))
  placed[:, vh:vh + s, vw:vw + s, :] = block.transpose(0, 2, 3, 1)
  got = square.l2_window_update(jnp.asarray(delta, jnp.float32), in1, window(vh2, vw2),
                                jnp.asarray(placed, jnp.float32), eps)
  np.testing.assert_allclose(np.asarray(got), want.transpose(0, 2, 3, 1), rtol=2e-5, atol=2e-6)
  # Every channel of the new window gets the same norm, the budget; with the
  # all-channel window norm (the form before the fix) they would follow δ's channels.
  per_channel = np.sqrt((np.asarray(got)[:, vh:vh + s, vw:vw + s, :] ** 2).sum(axis=(1, 2)))
  np.testing.assert_allclose(per_channel, per_channel[:, :1] * np.ones((1, c)), rtol=1e-5)


def test_linf_window_side_is_the_references():
  # round(sqrt(p·h·w)) with p the share of the image: 0.8 at the start of AutoAttack's run
  assert int(square.linf_window_side(0.8, 28, 28)) == 25        # MNIST
  assert int(square.linf_window_side(0.8, 32, 32)) == 29        # CIFAR-10
  assert int(square.linf_window_side(0.8 / 2 ** 7, 32, 32)) == 3
  assert int(square.linf_window_side(1.0, 32, 32)) == 31        # at most h − 1
  assert int(square.linf_window_side(1e-6, 32, 32)) == 1
  # the share at AutoAttack standard's first query is p_init itself
  assert float(square.window_share(0, 5000, 0.8, rescale=False)) == pytest.approx(0.8)
