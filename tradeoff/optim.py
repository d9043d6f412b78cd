"""optax optimisers and learning-rate schedules from `config.optim`."""
from __future__ import annotations

import jax
import ml_collections
import optax

from tradeoff import registry

OPTIMIZERS = ('sgd', 'adam', 'adamw')
SCHEDULES = ('constant', 'cosine', 'piecewise')


def schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Learning rate as a function of the step.

  'piecewise' multiplies the rate by `decay_factor` at each fraction of
  training in `decay_at` (e.g. (0.5, 0.75)); 'cosine' decays to 0. Both start
  with `warmup_steps` of linear warm-up.
  """
  registry.check_choice('optim.schedule', cfg.schedule, SCHEDULES)
  lr, warmup = cfg.learning_rate, int(cfg.warmup_steps)
  if cfg.schedule == 'constant':
    main = optax.constant_schedule(lr)
  elif cfg.schedule == 'cosine':
    main = optax.cosine_decay_schedule(lr, max(total_steps - warmup, 1))
  else:
    bounds = {max(int(f * total_steps) - warmup, 1): cfg.decay_factor for f in cfg.decay_at}
    main = optax.piecewise_constant_schedule(lr, bounds)
  if warmup <= 0:
    return main
  return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def _kernels(params):
  return jax.tree.map(lambda p: p.ndim > 1, params)


def build(cfg: ml_collections.ConfigDict, total_steps: int
          ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(optimizer, schedule) for `cfg.name` in OPTIMIZERS.

  `weight_decay` applies to weight matrices and kernels only (not biases or
  BatchNorm scales): coupled L2, added to the gradient as in Madry et al.'s
  code, for sgd and adam, and decoupled for adamw. With a linear model it is
  the SVM's ‖w‖² term.
  """
  registry.check_choice('optim.name', cfg.name, OPTIMIZERS)
  lr = schedule(cfg, total_steps)
  parts = []
  if cfg.grad_clip_norm > 0:
    parts.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.name == 'adamw':
    parts.append(optax.adamw(lr, weight_decay=cfg.weight_decay, mask=_kernels))
  else:
    if cfg.weight_decay > 0:
      parts.append(optax.add_decayed_weights(cfg.weight_decay, mask=_kernels))
    if cfg.name == 'sgd':
      parts.append(optax.sgd(lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov))
    else:
      parts.append(optax.adam(lr))
  return optax.chain(*parts), lr
