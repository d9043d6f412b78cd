"""An experiment: what a config asks for, built once and checked before anything runs.

    config ──validate──▶ resolve (attack steps) ──▶ data, model, attacks, loss context
    workdir ──────────────────────────────────────▶ the same, plus restored TrainStates

`validate` rejects a config that would train or evaluate the wrong thing
(unknown names, values out of range, an evaluation attack weaker than the
training attack) with a `errors.UserError` naming the value and the valid
choices, before any file is written. `build` then loads the data (which also
checks `data.classes` and `data.train_size` against the dataset) and resolves
the attack blocks to concrete values, once.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from tradeoff import attacks
from tradeoff import configlib
from tradeoff import data
from tradeoff import errors
from tradeoff import imagenet  # noqa: F401  (registers 'imagenet2012', 'restricted_imagenet')
from tradeoff import losses
from tradeoff import models
from tradeoff import optim
from tradeoff import parallel
from tradeoff import registry
from tradeoff import synthetic  # noqa: F401  (registers the 'synthetic' dataset)
from tradeoff import trained
from tradeoff import workdir as workdir_lib


class TrainState(train_state.TrainState):
  """flax TrainState plus non-parameter model collections (BatchNorm statistics)."""
  model_state: Any = None


@dataclasses.dataclass(frozen=True)
class Experiment:
  """A config made concrete.

  Attributes:
    config: the config with its attack blocks resolved (configlib.resolve).
    ds: the dataset after class selection and subsetting.
    module: the flax model (normalisation inside), as training computes.
    train_attack: the training attack (eps 0: standard training).
    eval_attack: the final evaluation's attack.
    ctx: what the loss function gets besides params, state, batch and rng.
    eval_module: the same model (same parameters) as evaluation computes it
      (models.eval_config: float32 unless model.eval_dtype says otherwise).
  """
  config: ml_collections.ConfigDict
  ds: data.Dataset
  module: nn.Module
  train_attack: attacks.Attack
  eval_attack: attacks.Attack
  ctx: losses.Context
  eval_module: nn.Module

  @property
  def num_train(self) -> int:
    return len(self.ds.y_train)


def check_batch_size(name: str, b: int) -> None:
  """A global batch must split evenly over every device of every process."""
  num_devices, num_processes = parallel.local_device_count(), jax.process_count()
  if b <= 0 or b % (num_devices * num_processes):
    where = (f'{num_devices} local devices' if num_processes == 1 else
             f'{num_devices * num_processes} devices ({num_processes} processes × '
             f'{num_devices} local devices)')
    raise errors.UserError(f'{name}={b} must be a positive multiple of the {where}.')


def check_positive(name: str, value, minimum=1) -> None:
  if value < minimum:
    raise errors.UserError(f'{name}={value} must be >= {minimum}.')


# Losses that train on clean (or noisy) inputs and never call the training attack.
ATTACK_FREE_LOSSES = ('standard', 'gaussian_augment')


def validate(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Checks what can be checked without data; returns the resolved config.

  Raises:
    errors.UserError: naming the bad value and the valid choices.
  """
  registry.check_choice('data.name', config.data.name, data.DATASETS.names())
  registry.check_choice('data.augment', config.data.augment, sorted(data.AUGMENTATIONS))
  models.MODELS.get(config.model.name)
  models.eval_config(config.model)
  losses.get(config.loss.name)
  registry.check_choice('optim.name', config.optim.name, optim.OPTIMIZERS)
  registry.check_choice('optim.schedule', config.optim.schedule, optim.SCHEDULES)
  registry.check_choice('norm', config.norm, attacks.NORMS)
  if config.data.train_size < 0:
    raise errors.UserError(f'data.train_size={config.data.train_size} must be >= 0 '
                           f'(0: the whole training set).')
  classes = tuple(config.data.classes)
  if classes and (len(classes) < 2 or len(set(classes)) != len(classes)
                  or any(not isinstance(c, int) or c < 0 for c in classes)):
    raise errors.UserError(f'data.classes={classes} must list at least 2 distinct class '
                           f'indices >= 0, or be () for all classes.')
  for name in ('batch_size', 'eval_batch_size'):
    check_batch_size(f'data.{name}', config.data[name])
  labelled, teacher = config.data.get('labelled_size', 0), config.data.get('pseudo_label_from', '')
  if bool(labelled) != bool(teacher) or labelled < 0:
    raise errors.UserError(
        f'data.labelled_size={labelled} and data.pseudo_label_from={teacher!r} go together: '
        f'n > 0 labelled examples and a teacher trained on them (robust self-training), or '
        f'0 and \'\' (every label is the dataset\'s).')
  if labelled and config.data.train_size:
    raise errors.UserError(f'data.train_size={config.data.train_size} with '
                           f'data.labelled_size={labelled}: robust self-training uses the '
                           f'whole training set (train_size 0), {labelled} of it labelled.')
  if config.data.get('validation_size', 0) < 0:
    raise errors.UserError(f'data.validation_size={config.data.validation_size} must be >= 0 '
                           f'(0: no validation split).')
  for name in ('num_eval_examples', 'num_robust_eval_examples', 'num_train_steps',
               'eval_every', 'eval_train_examples'):
    check_positive(name, config[name], 0)
  for name in ('log_every', 'checkpoint_every', 'max_checkpoints'):
    check_positive(name, config[name])
  if config.num_train_steps == 0 and not config.num_epochs > 0:
    raise errors.UserError(f'num_epochs={config.num_epochs} must be > 0 when '
                           f'num_train_steps is 0.')
  if not 0.0 <= config.attack.eps_warmup < 1.0:
    raise errors.UserError(f'attack.eps_warmup={config.attack.eps_warmup} must be in '
                           f'[0, 1): the fraction of training over which the training ε '
                           f'ramps up.')
  resolved = validate_attacks(config)
  atk = resolved.attack
  if config.loss.name in ATTACK_FREE_LOSSES and atk.eps > 0:
    raise errors.UserError(
        f'loss {config.loss.name!r} does not run the training attack, but attack.eps='
        f'{atk.eps}: set attack.eps=0, or pick a loss that trains at the attack\'s output '
        f'(pgd_at, trades, hinge).')
  if config.loss.name == 'gaussian_augment' and not config.loss.get('sigma', 0) > 0:
    raise errors.UserError(f'loss gaussian_augment needs loss.sigma > 0 (the noise level); got '
                           f'loss.sigma={config.loss.get("sigma")}.')
  if atk.name != 'pgd':
    raise errors.UserError(f'attack.name={atk.name!r}: training runs PGD (name \'pgd\'); '
                           f'the other attacks ({", ".join(attacks.NAMES[1:])}) are for '
                           f'eval_attack.')
  return resolved


def validate_attacks(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The resolved config, after checking both attack blocks and that the
  evaluation attack is at least as strong as the training attack (what an
  evaluation of a trained run checks too).

  Raises:
    errors.UserError: naming the bad value and the valid choices.
  """
  resolved = configlib.resolve(config)
  atk, ev = resolved.attack, resolved.eval_attack
  for block, c in (('attack', atk), ('eval_attack', ev)):
    registry.check_choice(f'{block}.norm', c.norm, attacks.NORMS)
    if c.eps < 0:
      raise errors.UserError(f'{block}.eps={c.eps} must be >= 0.')
    check_positive(f'{block}.num_steps', c.num_steps, 0)
    check_positive(f'{block}.restarts', c.restarts)
    attacks.from_config(c, (0.0, 1.0))  # the attack's own checks (reach, loss, ...)
  ev_steps, ev_restarts = ev.num_steps, ev.restarts
  if ev.name.startswith('autoattack'):   # its gradient stages' budget
    ev_steps, ev_restarts = ev.autoattack.apgd_steps, ev.autoattack.apgd_restarts
  if (ev.norm == atk.norm and ev.eps == atk.eps and atk.eps > 0 and
      (ev_steps < atk.num_steps or ev_restarts < atk.restarts)):
    raise errors.UserError(
        f'eval_attack (num_steps={ev_steps}, restarts={ev_restarts}) is weaker than the '
        f'training attack (num_steps={atk.num_steps}, restarts={atk.restarts}); robust '
        f'accuracy must be measured with an attack at least as strong.')
  return resolved


def build(config: ml_collections.ConfigDict) -> Experiment:
  """Validates `config`, loads its data and builds model, attacks and loss context."""
  resolved = validate(config)
  ds = data.load(resolved.data, resolved.seed)
  if resolved.data.get('pseudo_label_from', ''):
    ds = pseudo_labelled(ds, resolved)
  module, eval_module = models.build_pair(resolved.model, ds.num_classes, ds.mean, ds.std,
                                          bn_axis_name=parallel.AXIS)
  train_attack = attacks.from_config(resolved.attack, ds.bounds)
  eval_attack = attacks.from_config(resolved.eval_attack, ds.bounds, num_classes=ds.num_classes)
  ctx = losses.Context(module=module, attack=train_attack, config=resolved.loss)
  return Experiment(resolved, ds, module, train_attack, eval_attack, ctx, eval_module)


# The teacher's data fields that must match the student's, so that the teacher
# was trained on exactly the student's labelled examples.
_TEACHER_MATCH = ('data.name', 'data.classes', 'data.validation_size', 'seed')


def pseudo_labelled(ds: data.Dataset, config: ml_collections.ConfigDict) -> data.Dataset:
  """Robust self-training's data (Carmon et al. 2019; Raghunathan et al. 2020):
  the training set with every example outside the labelled subset relabelled by
  a teacher.

  The labelled subset is the class-balanced draw of `data.labelled_size`
  examples with the run's seed, the one `data.train_size = labelled_size` would
  train on; the teacher (`data.pseudo_label_from`, a finished run) must have been
  trained on exactly that subset. Its predictions (newest checkpoint, inference
  mode) replace the other labels. results.json's data.pseudo_labels records the
  teacher, the counts, and how many pseudo-labels agree with the true labels.
  """
  teacher_wd, n = config.data.pseudo_label_from, int(config.data.labelled_size)
  results = workdir_lib.read_results(teacher_wd)
  if results is None:
    raise errors.UserError(f'data.pseudo_label_from={teacher_wd!r} is not a finished run '
                           f'(no results.json): train the teacher first.')
  teacher_cfg = workdir_lib.load_config(teacher_wd)
  mine = workdir_lib.flat_config(workdir_lib.as_json(config))
  theirs = workdir_lib.flat_config(workdir_lib.as_json(teacher_cfg))
  wrong = [f'{k}: {theirs.get(k)!r} (this run: {mine.get(k)!r})' for k in _TEACHER_MATCH
           if theirs.get(k) != mine.get(k)]
  if theirs.get('data.train_size') != n:
    wrong.append(f"data.train_size: {theirs.get('data.train_size')!r} (this run's "
                 f'data.labelled_size: {n})')
  if wrong:
    raise errors.UserError(f'The teacher {teacher_wd} was not trained on this run\'s labelled '
                           f'examples; its ' + '; '.join(wrong) + '.')
  labelled = data.balanced_subset_indices(ds.y_train, n, ds.num_classes, int(config.seed),
                                          name='data.labelled_size')
  unlabelled = np.setdiff1d(np.arange(len(ds.y_train)), labelled)
  teacher = trained.load(teacher_wd, config=teacher_cfg)
  if teacher.num_classes != ds.num_classes:
    raise errors.UserError(f'The teacher {teacher_wd} has {teacher.num_classes} classes; '
                           f'this run\'s data has {ds.num_classes}.')
  batch = int(teacher_cfg.data.eval_batch_size)
  preds = np.concatenate([
      np.asarray(models.predict(teacher.logits(data.to_float(ds.x_train[unlabelled[i:i + batch]]))))
      for i in range(0, len(unlabelled), batch)]) if len(unlabelled) else np.zeros(0, np.int32)
  y = ds.y_train.copy()
  y[unlabelled] = preds
  info = {'teacher': workdir_lib.absolute(teacher_wd), 'teacher_commit': results.get('commit'),
          'teacher_checkpoint_step': teacher.step, 'teacher_variables_sha': teacher.variables_sha,
          'teacher_clean_accuracy': results.get('clean_accuracy'),
          'num_labelled': int(n), 'num_pseudo_labelled': int(len(unlabelled)),
          'pseudo_label_accuracy': float(np.mean(preds == ds.y_train[unlabelled]))
                                   if len(unlabelled) else None}
  return dataclasses.replace(ds, y_train=y, info={**ds.info, 'pseudo_labels': info})


def model_record(exp: Experiment) -> dict:
  """What rebuilding the model needs, for workdir/model.json and exports."""
  ds = exp.ds
  return {'model': exp.config.model.to_dict(), 'num_classes': ds.num_classes,
          'input_shape': list(ds.x_train.shape[1:]),
          'input_dtype': 'float32', 'input_range': None if ds.bounds is None else
          list(ds.bounds),
          'normalization': {'mean': list(ds.mean), 'std': list(ds.std),
                            'applied_inside_model': bool(exp.config.model.normalize)},
          'dataset': ds.info.get('source', ds.name), 'classes': list(exp.config.data.classes),
          'class_names': ds.info.get('class_names')}


def rng_streams(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(init, train, eval) keys of a run: a pure function of config.seed."""
  k_init, k_train, k_eval = jax.random.split(jax.random.key(seed), 3)
  return k_init, k_train, k_eval


def eval_split(config: ml_collections.ConfigDict, ds: data.Dataset):
  """The test examples a run is evaluated on: the first num_eval_examples (0: all)."""
  n = config.num_eval_examples if config.num_eval_examples > 0 else len(ds.y_test)
  return ds.x_test[:n], ds.y_test[:n]


def total_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  if config.num_train_steps > 0:
    return int(config.num_train_steps)
  return max(1, math.ceil(config.num_epochs * num_train / config.data.batch_size))


@functools.partial(jax.jit, static_argnums=0)
def _init_variables(module: nn.Module, rng, x):
  """The module's initial variables, by one jitted program (run eagerly, every
  parameter's initializer compiles on its own, which takes longer cold). The
  module is a static argument, so equal modules (one per run that a sweep or
  figure command restores) share one compilation per process."""
  return module.init(rng, x, train=False)


def create_state(rng, module: nn.Module, example_input: np.ndarray,
                 tx: optax.GradientTransformation) -> TrainState:
  variables = flax.core.unfreeze(_init_variables(module, rng,
                                                 jnp.asarray(example_input[:1])))
  params = variables.pop('params')
  return TrainState.create(apply_fn=module.apply, params=params, tx=tx,
                           model_state=variables)


def initial_state(exp: Experiment):
  """(TrainState at step 0, learning-rate schedule, total steps) of an experiment."""
  steps = total_steps(exp.config, exp.num_train)
  tx, lr_schedule = optim.build(exp.config.optim, steps)
  k_init, _, _ = rng_streams(exp.config.seed)
  state = create_state(k_init, exp.module, data.to_float(exp.ds.x_train[:1]), tx)
  return state, lr_schedule, steps


def restore(config: ml_collections.ConfigDict, workdir: str, steps=None):
  """A run's experiment and its checkpointed TrainStates.

  Args:
    config: the run's config (workdir.load_config), possibly with overrides.
    workdir: the run directory.
    steps: checkpoint steps to restore; None: the newest readable one; 'all':
      every saved step, in order.

  Returns:
    (experiment, {step: TrainState}).
  """
  exp = build(config)
  like, _, _ = initial_state(exp)
  if steps is None:
    mngr, state, _ = workdir_lib.restore_latest(workdir, like, config.max_checkpoints)
    mngr.close()
    if state is None:
      raise errors.DataNotFoundError(f'No checkpoint in {workdir_lib.checkpoint_dir(workdir)}.')
    return exp, {int(state.step): state}
  mngr = workdir_lib.checkpoint_manager(workdir, config.max_checkpoints)
  if steps == 'all':
    steps = sorted(mngr.all_steps())
  if not steps:
    raise errors.DataNotFoundError(f'No checkpoint in {workdir_lib.checkpoint_dir(workdir)}.')
  states = {int(s): workdir_lib.restore_checkpoint(mngr, s, like)[0] for s in steps}
  mngr.close()
  return exp, states
