"""Training losses behind a registry: `config.loss.name` picks one.

A loss has the signature

    loss_fn(params, model_state, batch, rng, ctx) -> (loss, (metrics, new_model_state))

  params:       the model's 'params' collection (what is differentiated).
  model_state:  its other collections, e.g. {'batch_stats': ...}, maybe {}.
  batch:        {'image': f32[B, ...] in [0, 1], 'label': i32[B]} for one device.
  rng:          PRNG key for this step and device.
  ctx:          a `Context`: ctx.apply(params, model_state, x, train) runs the
                model, ctx.logits_fn(params, model_state) is the model in
                inference mode for attacks, ctx.attack is the configured
                training attack, ctx.config is config.loss.
  loss:         f32[] to minimise; metrics: dict of f32[] to average and log;
  new_model_state: model_state after the train-mode forward passes.

A user's own loss is `--config.loss.name=my_package.my_module:my_loss`.

Danskin's theorem: for the robust objective max_δ L(x + δ; θ), the gradient
with respect to θ is ∇θ L(x + δ*; θ) at the maximiser δ*, held constant. The
attack is called inside the differentiated function, and its output is
`stop_gradient`-ed (attacks.Attack.perturb), so jax.grad never unrolls the
PGD loop; it would compute a different, wrong gradient if it did.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from tradeoff import attacks
from tradeoff import errors
from tradeoff import models
from tradeoff import objectives
from tradeoff import registry

LOSSES: registry.Registry[Callable[..., Any]] = registry.Registry('loss')


@dataclasses.dataclass(frozen=True)
class Context:
  """What a loss may use besides params, state, batch and rng."""
  module: nn.Module
  attack: attacks.Attack
  config: ml_collections.ConfigDict

  def apply(self, params, model_state, x, train: bool):
    """(logits f32[B, K], new_model_state); see models.apply."""
    return models.apply(self.module, params, model_state, x, train)

  def logits_fn(self, params, model_state) -> Callable[[jax.Array], jax.Array]:
    """x -> logits with the model in inference mode, as attacks use it."""
    return lambda x: models.apply(self.module, params, model_state, x, train=False)[0]


def accuracy(logits: jax.Array, y: jax.Array) -> jax.Array:
  return jnp.mean(models.predict(logits) == y)


def _at_attack_point(per_example, params, model_state, batch, rng, ctx: Context):
  """min_θ E[max_δ per_example(f(x + δ), y)] with the configured attack."""
  x, y = batch['image'], batch['label']
  x_adv = ctx.attack(ctx.logits_fn(params, model_state), x, y, rng)  # not differentiated
  logits, new_state = ctx.apply(params, model_state, x_adv, train=True)
  loss = jnp.mean(per_example(logits, y))
  return loss, ({'loss': loss, 'accuracy': accuracy(logits, y)}, new_state)


@LOSSES.register('standard')
def standard(params, model_state, batch, rng, ctx: Context):
  """Cross-entropy on clean inputs; the attack is not run (standard training)."""
  del rng
  logits, new_state = ctx.apply(params, model_state, batch['image'], train=True)
  loss = jnp.mean(objectives.cross_entropy(logits, batch['label']))
  return loss, ({'loss': loss, 'accuracy': accuracy(logits, batch['label'])}, new_state)


@LOSSES.register('pgd_at')
def pgd_at(params, model_state, batch, rng, ctx: Context):
  """Madry et al. (2018): cross-entropy at the attack's output; ε = 0 is standard training."""
  return _at_attack_point(objectives.cross_entropy, params, model_state, batch, rng, ctx)


@LOSSES.register('hinge')
def hinge(params, model_state, batch, rng, ctx: Context):
  """Hinge loss at the attack's output.

  With a linear model and weight decay this is the soft-margin SVM of
  Tsipras et al. §2.2, adversarially trained when ε > 0 (for ℓ∞ its inner
  maximum is the hinge of the margin minus ε‖w‖₁).
  """
  return _at_attack_point(objectives.hinge, params, model_state, batch, rng, ctx)


@LOSSES.register('trades')
def trades(params, model_state, batch, rng, ctx: Context):
  """TRADES (Zhang et al., 2019): CE(f(x), y) + β·KL(f(x) ‖ f(x')).

  x' maximises KL(f(x) ‖ f(x')) over the ball, with f(x) from the model in
  inference mode and held constant; `ctx.config.beta` is β.
  """
  if ctx.attack.active and not ctx.attack.random_start:
    raise errors.UserError('loss trades needs attack.random_start=True: the KL objective '
                     'has zero gradient at x itself.')
  x, y = batch['image'], batch['label']
  logits_fn = ctx.logits_fn(params, model_state)
  clean_eval = jax.lax.stop_gradient(logits_fn(x))
  objective = lambda z: (objectives.kl_divergence(clean_eval, logits_fn(z)),
                         jnp.zeros(z.shape[0], bool))
  x_adv = ctx.attack.perturb(objective, x, rng)  # no gradient
  clean_logits, state = ctx.apply(params, model_state, x, train=True)
  adv_logits, state = ctx.apply(params, state, x_adv, train=True)
  natural = jnp.mean(objectives.cross_entropy(clean_logits, y))
  robust = jnp.mean(objectives.kl_divergence(clean_logits, adv_logits))
  loss = natural + ctx.config.beta * robust
  metrics = {'loss': loss, 'accuracy': accuracy(clean_logits, y),
             'adv_accuracy': accuracy(adv_logits, y), 'trades_kl': robust}
  return loss, (metrics, state)


@LOSSES.register('gaussian_augment')
def gaussian_augment(params, model_state, batch, rng, ctx: Context):
  """Cross-entropy on x + σε, ε ~ N(0, I) in pixel space, not clipped
  (Cohen et al. 2019: the base classifier of randomized smoothing, `tradeoff.smoothing`);
  `ctx.config.sigma` is σ. The attack is not run (attack.eps must be 0)."""
  x, y = batch['image'], batch['label']
  noisy = x + ctx.config.sigma * jax.random.normal(rng, x.shape, x.dtype)
  logits, new_state = ctx.apply(params, model_state, noisy, train=True)
  loss = jnp.mean(objectives.cross_entropy(logits, y))
  return loss, ({'loss': loss, 'accuracy': accuracy(logits, y)}, new_state)


def get(name: str):
  """The loss function registered as `name`, or a 'package.module:fn' import."""
  return LOSSES.get(name)
