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
import hashlib
import json
import math
import os
import time
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from tradeoff import accuracy
from tradeoff import attacks
from tradeoff import configlib
from tradeoff import data
from tradeoff import errors
from tradeoff import imagenet  # noqa: F401  (registers 'imagenet2012', 'restricted_imagenet')
from tradeoff import losses
from tradeoff import models
from tradeoff import optim
from tradeoff import parallel
from tradeoff import provenance
from tradeoff import registry
from tradeoff import synthetic  # noqa: F401  (registers the 'synthetic' dataset)
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


def _check_positive(name: str, value, minimum=1) -> None:
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
  num_devices = parallel.local_device_count()
  num_processes = jax.process_count()
  for name in ('batch_size', 'eval_batch_size'):
    b = config.data[name]
    if b <= 0 or b % (num_devices * num_processes):
      where = (f'{num_devices} local devices' if num_processes == 1 else
               f'{num_devices * num_processes} devices ({num_processes} processes × '
               f'{num_devices} local devices)')
      raise errors.UserError(f'data.{name}={b} must be a positive multiple of the {where}.')
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
    _check_positive(name, config[name], 0)
  for name in ('log_every', 'checkpoint_every', 'max_checkpoints'):
    _check_positive(name, config[name])
  if config.num_train_steps == 0 and not config.num_epochs > 0:
    raise errors.UserError(f'num_epochs={config.num_epochs} must be > 0 when '
                           f'num_train_steps is 0.')
  if not 0.0 <= config.attack.eps_warmup < 1.0:
    raise errors.UserError(f'attack.eps_warmup={config.attack.eps_warmup} must be in '
                           f'[0, 1): the fraction of training over which the training ε '
                           f'ramps up.')
  resolved = configlib.resolve(config)
  atk, ev = resolved.attack, resolved.eval_attack
  for block, c in (('attack', atk), ('eval_attack', ev)):
    registry.check_choice(f'{block}.norm', c.norm, attacks.NORMS)
    if c.eps < 0:
      raise errors.UserError(f'{block}.eps={c.eps} must be >= 0.')
    _check_positive(f'{block}.num_steps', c.num_steps, 0)
    _check_positive(f'{block}.restarts', c.restarts)
    attacks.from_config(c, (0.0, 1.0))  # the attack's own checks (reach, loss, ...)
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
  module = models.build(resolved.model, ds.num_classes, ds.mean, ds.std,
                        bn_axis_name=parallel.AXIS)
  eval_cfg = models.eval_config(resolved.model)
  eval_module = module if eval_cfg.dtype == resolved.model.dtype else models.build(
      eval_cfg, ds.num_classes, ds.mean, ds.std, bn_axis_name=parallel.AXIS)
  train_attack = attacks.from_config(resolved.attack, ds.bounds)
  eval_attack = attacks.from_config(resolved.eval_attack, ds.bounds)
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
  teacher, states = restore(teacher_cfg, teacher_wd)
  state = states[max(states)]
  apply = jax.jit(lambda x: models.predict(models.apply(
      teacher.eval_module, state.params, state.model_state, x, train=False)[0]))
  batch = int(teacher_cfg.data.eval_batch_size)
  preds = np.concatenate([
      np.asarray(apply(data.to_float(ds.x_train[unlabelled[i:i + batch]])))
      for i in range(0, len(unlabelled), batch)]) if len(unlabelled) else np.zeros(0, np.int32)
  y = ds.y_train.copy()
  y[unlabelled] = preds
  info = {'teacher': os.path.abspath(teacher_wd), 'teacher_commit': results.get('commit'),
          'teacher_checkpoint_step': int(state.step),
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


@dataclasses.dataclass(frozen=True)
class Restored:
  """A run's newest checkpoint ready to attack: its experiment and state, the
  parameters and model state replicated over the local devices, the run's
  evaluation key, and the first test examples (x, y)."""
  exp: Experiment
  state: TrainState
  params: Any
  model_state: Any
  rng: jax.Array
  x: Any
  y: np.ndarray


def restore_for_evaluation(config: ml_collections.ConfigDict, workdir: str,
                           num_examples: int) -> Restored:
  exp, states = restore(config, workdir)
  state = states[max(states)]
  n = parallel.local_device_count()
  _, _, rng = rng_streams(exp.config.seed)
  return Restored(exp, state, parallel.replicate(state.params, n),
                  parallel.replicate(state.model_state, n), rng,
                  exp.ds.x_test[:num_examples], exp.ds.y_test[:num_examples])


def variables_digest(*trees) -> str:
  """A digest of the arrays of `trees` (their paths, dtypes, shapes and bytes):
  equal for bit-identical parameters, different for a model trained again to
  the same step with other numbers."""
  h = hashlib.sha1()
  for tree in trees:
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
      a = np.ascontiguousarray(jax.device_get(leaf))
      h.update(f'{jax.tree_util.keystr(path)}:{a.dtype}:{a.shape}'.encode())
      h.update(a.tobytes())
  return h.hexdigest()[:16]


def cascade_progress(exp, workdir: str, step: int, num_eval: int, variables_sha: str):
  """Where a cascade (AutoAttack) evaluation of `workdir`'s checkpoint `step`
  (whose parameters and model state have digest `variables_sha`) saves its
  progress, so that a killed one resumes (None for other attacks):
  `<workdir>/evaluations/progress/<hash of what is evaluated>.json`. A model
  trained again into the same workdir starts a fresh evaluation unless its
  variables are bit-identical."""
  if not isinstance(exp.eval_attack, attacks.Cascade):
    return None
  key = {'eval_attack': exp.eval_attack.describe(), 'checkpoint_step': step,
         'variables_sha': variables_sha,
         'num_eval_examples': num_eval,
         'num_robust_eval_examples': int(exp.config.num_robust_eval_examples),
         'eval_batch_size': int(exp.config.data.eval_batch_size),
         'seed': int(exp.config.seed), 'data': str(exp.config.data.name),
         # the same name from other files (e.g. an approximate copy) is other data
         'data_source': [exp.ds.info.get(k) for k in ('source', 'approximate_copy')],
         'devices': jax.device_count()}
  digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
  return accuracy.CascadeProgress(
      os.path.join(workdir, 'evaluations', 'progress', f'{digest}.json'), key)


def _newest_checkpoint_for_evaluation(config: ml_collections.ConfigDict, workdir: str):
  """`workdir`'s newest checkpoint restored under `config`: (exp, state, x_eval,
  y_eval, digest of its variables, its cascade progress file or None)."""
  exp, states = restore(config, workdir)
  state = states[max(states)]
  x_eval, y_eval = eval_split(exp.config, exp.ds)
  sha = variables_digest(state.params, state.model_state)
  progress = cascade_progress(exp, workdir, int(state.step), len(y_eval), sha)
  return exp, state, x_eval, y_eval, sha, progress


def cascade_progress_of(config: ml_collections.ConfigDict, workdir: str):
  """The progress of an unfinished cascade (AutoAttack) evaluation of `workdir`'s
  newest checkpoint under `config`, as `evaluate_checkpoint` saved it: the saved
  record (CascadeProgress.load: the robust mask, the finished stages, where it
  stopped) with the cascade's stage names, the number of points it attacks,
  the model's variables_sha and the progress file's path; None when there is no
  such progress (not a cascade, never started, finished, or another model's)."""
  exp, state, _, y_eval, sha, progress = _newest_checkpoint_for_evaluation(config, workdir)
  if progress is None:
    return None
  m = accuracy.num_attacked(int(exp.config.num_robust_eval_examples), len(y_eval))
  saved = progress.load(m)
  if saved is None:
    return None
  return {'saved': saved, 'stages': [st.describe()['name'] for st in exp.eval_attack.stages],
          'eval_attack': exp.eval_attack.describe(), 'num_robust_examples': m,
          'checkpoint_step': int(state.step), 'variables_sha': sha, 'path': progress.path}


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Restores the newest checkpoint of `workdir` and evaluates config.eval_attack."""
  t0 = time.time()
  commit = provenance.git_commit()  # the code this process runs; the tree may change meanwhile
  exp, state, x_eval, y_eval, sha, progress = _newest_checkpoint_for_evaluation(config, workdir)
  num_devices = parallel.local_device_count()
  _, _, rng = rng_streams(exp.config.seed)  # as in training: same numbers
  result = accuracy.evaluate_clean_and_robust(
      exp.eval_module, exp.eval_attack, parallel.replicate(state.params, num_devices),
      parallel.replicate(state.model_state, num_devices), x_eval, y_eval,
      exp.config.data.eval_batch_size, rng, exp.config.num_robust_eval_examples,
      progress=progress)
  return {'workdir': os.path.abspath(workdir), 'checkpoint_step': int(state.step),
          'variables_sha': sha,
          'config': workdir_lib.as_json(config),
          'commit': commit, 'device': provenance.device_description(),
          'host': provenance.host(), 'versions': provenance.versions(),
          # with the time of the parts a killed earlier evaluation finished
          'wall_time_s': time.time() - t0 + result.get('resumed', {}).get('earlier_time_s', 0.0),
          'data': exp.ds.info,
          'eval_attack': exp.eval_attack.describe(), **result}
