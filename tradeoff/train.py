"""Adversarial training: state, pmapped step, loop, checkpoints, results.

The step is a pure module-level function, bound with functools.partial and run
under `jax.pmap(axis_name='batch')` on every local device (one device is a
pmap of one). Gradients, metrics and model state are `lax.pmean`-ed, so k
devices compute the step of the global batch. Randomness is derived, never
stored: the step's key is fold_in(fold_in(root, step), device).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
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

from tradeoff import attacks
from tradeoff import checkpoint
from tradeoff import configlib
from tradeoff import data
from tradeoff import evaluation
from tradeoff import losses
from tradeoff import models
from tradeoff import optim
from tradeoff import provenance
from tradeoff import synthetic  # noqa: F401  (registers the 'synthetic' dataset)
from tradeoff import writers

AXIS = evaluation.AXIS
# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_CHANGES = ('log_every', 'checkpoint_every', 'eval_every', 'max_checkpoints',
                     'data.data_dir', 'data.download', 'tensorboard', 'progress_bar')


# Config fields added to the schema after runs were made with it, and the value
# that reproduces the older behaviour: a saved config without the field is read
# as having that value, so older runs still resume and count as finished.
ADDED_FIELDS = {'model.keep_features': [], 'num_robust_eval_examples': 0}


def _config_diff(saved: dict, new: dict) -> list[str]:
  """Flattened keys whose values differ, ignoring RESUMABLE_CHANGES and ADDED_FIELDS defaults."""
  saved = {**{k: v for k, v in ADDED_FIELDS.items() if k not in saved}, **saved}
  return sorted(k for k in set(saved) | set(new)
                if saved.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)


class TrainState(train_state.TrainState):
  """flax TrainState plus non-parameter model collections (BatchNorm statistics)."""
  model_state: Any = None


def eps_scale(step: jax.Array, warmup_steps: int) -> jax.Array | float:
  """Training-ε multiplier: linear from 1/warmup_steps to 1 over warmup_steps, then 1."""
  if warmup_steps <= 0:
    return 1.0
  return jnp.minimum(1.0, (step + 1) / warmup_steps)


def train_step(state: TrainState, batch, root_rng, *, loss_fn, ctx: losses.Context,
               augment, axis_name: str | None, eps_warmup_steps: int = 0):
  """One minimax step on one device's shard of the global batch.

  Args:
    state: this device's (replicated) TrainState.
    batch: {'image': f32[b, ...], 'label': i32[b]}, b = global batch / devices.
    root_rng: the run's root key (same on every device).
    loss_fn: a losses.LOSSES entry; it runs the attack itself (Danskin).
    ctx: losses.Context with the module, training attack and loss config.
    augment: data augmentation fn (rng, images) -> images.
    axis_name: the pmap axis to average over, or None on a single device.
    eps_warmup_steps: ramp the training attack's ε linearly over this many
      steps (0: full ε from the start).

  Returns:
    (new state, metrics averaged over devices).
  """
  rng = jax.random.fold_in(root_rng, state.step)
  if axis_name is not None:
    rng = jax.random.fold_in(rng, jax.lax.axis_index(axis_name))
  k_aug, k_loss = jax.random.split(rng)
  batch = {**batch, 'image': augment(k_aug, batch['image'])}
  if eps_warmup_steps > 0:
    scaled = dataclasses.replace(ctx.attack, scale=eps_scale(state.step, eps_warmup_steps))
    ctx = dataclasses.replace(ctx, attack=scaled)
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  (_, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch,
                                               k_loss, ctx)
  if axis_name is not None:
    grads, metrics, model_state = jax.lax.pmean((grads, metrics, model_state), axis_name)
  metrics['grad_norm'] = optax.tree.norm(grads)
  return state.apply_gradients(grads=grads, model_state=model_state), metrics


def make_p_train_step(loss_fn, ctx, augment, eps_warmup_steps: int = 0):
  step = functools.partial(train_step, loss_fn=loss_fn, ctx=ctx, augment=augment,
                           axis_name=AXIS, eps_warmup_steps=eps_warmup_steps)
  return jax.pmap(step, axis_name=AXIS, in_axes=(0, 0, None), donate_argnums=(0,))


def create_state(rng, module: nn.Module, example_input: np.ndarray,
                 tx: optax.GradientTransformation) -> TrainState:
  variables = module.init(rng, jnp.asarray(example_input[:1]), train=False)
  variables = flax.core.unfreeze(variables)
  params = variables.pop('params')
  return TrainState.create(apply_fn=module.apply, params=params, tx=tx,
                           model_state=variables)


def rng_streams(seed: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(init, train, eval) keys of a run: a pure function of config.seed."""
  k_init, k_train, k_eval = jax.random.split(jax.random.key(seed), 3)
  return k_init, k_train, k_eval


def eval_split(config: ml_collections.ConfigDict, ds: data.Dataset):
  """The test examples a run is evaluated on: the first num_eval_examples (0: all)."""
  n = config.num_eval_examples if config.num_eval_examples > 0 else len(ds.y_test)
  return ds.x_test[:n], ds.y_test[:n]


def replicate(tree, num_devices: int):
  """Copies with a leading device axis, placed as pmap places its own outputs.

  Going through the host uncommits arrays placed on one device (e.g. by a
  checkpoint restore), which pmap would reject; matching pmap's output
  sharding means the first step does not compile a second time.
  """
  devices = jax.local_devices()[:num_devices]
  sharding = jax.sharding.NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS,)),
                                        jax.sharding.PartitionSpec(AXIS))
  return jax.tree.map(
      lambda a: jax.device_put(np.broadcast_to(np.asarray(a), (num_devices,) + np.shape(a)),
                               sharding),
      jax.device_get(tree))


def unreplicate(tree):
  return jax.tree.map(lambda a: a[0], tree)


def total_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  if config.num_train_steps > 0:
    return int(config.num_train_steps)
  return max(1, math.ceil(config.num_epochs * num_train / config.data.batch_size))


def _flat(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def check_config(config: ml_collections.ConfigDict) -> None:
  """Rejects configs that would silently train or evaluate the wrong thing."""
  num_devices = jax.local_device_count()
  for name in ('batch_size', 'eval_batch_size'):
    b = config.data[name]
    if b <= 0 or b % num_devices:
      raise ValueError(f'data.{name}={b} must be a positive multiple of the '
                       f'{num_devices} local devices.')
  atk = configlib.resolve_attack(config, 'attack')
  ev = configlib.resolve_attack(config, 'eval_attack')
  for block, c in (('attack', atk), ('eval_attack', ev)):
    if c.eps < 0:
      raise ValueError(f'{block}.eps={c.eps} must be >= 0.')
  if (ev.norm == atk.norm and ev.eps == atk.eps and atk.eps > 0 and
      (ev.num_steps < atk.num_steps or ev.restarts < atk.restarts)):
    raise ValueError(
        f'eval_attack (num_steps={ev.num_steps}, restarts={ev.restarts}) is weaker than the '
        f'training attack (num_steps={atk.num_steps}, restarts={atk.restarts}); robust '
        f'accuracy must be measured with an attack at least as strong.')
  if not 0.0 <= config.attack.eps_warmup < 1.0:
    raise ValueError(f'attack.eps_warmup={config.attack.eps_warmup} must be in [0, 1): the '
                     f'fraction of training over which the training ε ramps up.')
  losses.get(config.loss.name)


def sync_config(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Saves config.json, or checks that a resumed run trains what was started."""
  path = os.path.join(workdir, 'config.json')
  current = json.loads(config.to_json_best_effort())
  if os.path.exists(path):
    with open(path) as f:
      saved = _flat(json.load(f))
    new = _flat(current)
    diff = _config_diff(saved, new)
    if diff:
      details = '; '.join(f'{k}: {saved.get(k)!r} -> {new.get(k)!r}' for k in diff)
      raise ValueError(f'{workdir} holds a run with a different config ({details}). '
                       f'Use a new --workdir, or the same config to resume.')
  with open(path, 'w') as f:
    json.dump(current, f, indent=2)


def finished_results(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """The run's results.json if it finished with this config (modulo RESUMABLE_CHANGES)."""
  path = os.path.join(workdir, 'results.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    results = json.load(f)
  saved = _flat(results.get('config', {}))
  same = not _config_diff(saved, _flat(json.loads(config.to_json_best_effort())))
  return results if same else None


def train_or_load(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """results.json of a finished run with this config, else trains (or resumes) it."""
  results = finished_results(config, workdir)
  if results is not None:
    logging.info('%s already finished; using its results.json', workdir)
    return results
  return train_and_evaluate(config, workdir)


def setup(config: ml_collections.ConfigDict):
  """Data, model, attacks and loss context of a config (shared with evaluate.py)."""
  ds = data.load(config.data, config.seed)
  module = models.build(config.model, ds.num_classes, ds.mean, ds.std, bn_axis_name=AXIS)
  train_attack = attacks.Attack.from_config(configlib.resolve_attack(config, 'attack'),
                                            ds.bounds)
  eval_attack = attacks.Attack.from_config(configlib.resolve_attack(config, 'eval_attack'),
                                           ds.bounds)
  ctx = losses.Context(module=module, attack=train_attack, config=config.loss)
  return ds, module, train_attack, eval_attack, ctx


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`, evaluates it, writes results.json.

  Returns:
    The results dict that was written.
  """
  t_start = time.time()
  commit = provenance.git_commit()  # the code this process runs; HEAD may move meanwhile
  os.makedirs(workdir, exist_ok=True)
  check_config(config)
  sync_config(config, workdir)
  ds, module, train_attack, eval_attack, ctx = setup(config)
  num_devices = jax.local_device_count()
  steps = total_steps(config, len(ds.y_train))
  tx, lr_schedule = optim.build(config.optim, steps)
  k_init, k_train, k_eval = rng_streams(config.seed)
  state = create_state(k_init, module, data.to_float(ds.x_train[:1]), tx)

  mngr = checkpoint.manager(workdir, config.max_checkpoints)
  restored, meta = checkpoint.restore_latest(mngr, state)
  if restored is not None:
    state = restored
    logging.info('Resumed from step %d in %s', int(state.step), workdir)
  train_seconds = meta['train_seconds'] if meta else 0.0
  start_step = int(state.step)
  num_params = sum(a.size for a in jax.tree.leaves(state.params))

  warmup_steps = int(config.attack.eps_warmup * steps)
  p_train_step = make_p_train_step(losses.get(config.loss.name), ctx,
                                   data.get_augmentation(config.data.augment), warmup_steps)
  eval_steps = (evaluation.make_eval_step(module, eval_attack),
                evaluation.make_eval_step(module, attacks.Attack()))
  stream = data.TrainStream(ds.x_train, ds.y_train, config.data.batch_size, config.seed)
  x_eval, y_eval = eval_split(config, ds)

  def run_eval(st):
    return evaluation.evaluate_clean_and_robust(
        module, eval_attack, st.params, st.model_state, x_eval, y_eval,
        config.data.eval_batch_size, k_eval, config.num_robust_eval_examples, eval_steps)

  writer = writers.MetricWriter(workdir, tensorboard=config.tensorboard)
  progress = writers.Progress(steps, start_step) if config.progress_bar else None
  rstate = replicate(state, num_devices)
  pending: list[tuple[int, dict]] = []
  t_last, steps_since = time.time(), 0

  def flush(step: int):
    """Checks losses since the last flush are finite, then logs their mean."""
    nonlocal t_last, steps_since
    if not pending:
      return
    fetched = jax.device_get([(s, unreplicate(m)) for s, m in pending])
    for s, m in fetched:
      if not math.isfinite(float(m['loss'])):
        raise FloatingPointError(f'Non-finite training loss {float(m["loss"])} at step {s} '
                                 f'(0-based); stopping. Last checkpoint: {mngr.latest_step()}.')
    scalars = {f'train/{k}': float(np.mean([m[k] for _, m in fetched])) for k in fetched[0][1]}
    elapsed = time.time() - t_last
    scalars['train/learning_rate'] = float(lr_schedule(step - 1))
    scalars['train/eps'] = train_attack.eps * float(eps_scale(step - 1, warmup_steps))
    scalars['train/epoch'] = stream.epoch(step)
    scalars['train/images_per_s'] = steps_since * config.data.batch_size / max(elapsed, 1e-9)
    writer.write(step, scalars)
    logging.info('step %d/%d: %s', step, steps,
                 ', '.join(f'{k[6:]}={v:.4g}' for k, v in scalars.items()))
    if progress:
      progress.show(scalars)
    pending.clear()
    t_last, steps_since = time.time(), 0

  t_train = time.time()
  for step in range(start_step, steps):
    batch = data.shard(stream.batch(step), num_devices)
    rstate, metrics = p_train_step(rstate, batch, k_train)
    pending.append((step, metrics))
    steps_since += 1
    if progress:
      progress.update()
    done = step + 1
    is_ckpt = done % config.checkpoint_every == 0 or done == steps
    if done % config.log_every == 0 or is_ckpt:
      flush(done)
    if is_ckpt:
      seconds = train_seconds + time.time() - t_train
      checkpoint.save(mngr, done, unreplicate(rstate), {'train_seconds': seconds})
    if config.eval_every > 0 and done % config.eval_every == 0 and done != steps:
      writer.write(done, {f'eval/{k}': v for k, v in run_eval(rstate).items()})
  flush(steps)
  train_seconds += time.time() - t_train
  mngr.wait_until_finished()
  if progress:
    progress.close()

  t_eval = time.time()
  final = run_eval(rstate)
  eval_seconds = time.time() - t_eval
  writer.write(steps, {f'eval/{k}': v for k, v in final.items()})
  writer.close()
  results = {
      'config': json.loads(config.to_json_best_effort()),
      'commit': commit,
      'device': provenance.device_description(),
      'versions': provenance.versions(),
      'wall_time_s': time.time() - t_start,
      'train_time_s': train_seconds,
      'eval_time_s': eval_seconds,
      'resumed_from_step': start_step,
      'train_steps': steps,
      'num_params': int(num_params),
      'data': ds.info,
      'train_attack': {**train_attack.describe(), 'eps_warmup_steps': warmup_steps},
      'eval_attack': eval_attack.describe(),
      **final,
  }
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(results, f, indent=2)
  logging.info('clean accuracy %.4f, robust accuracy %.4f (%s, eps=%g) -> %s',
               final['clean_accuracy'], final['robust_accuracy'],
               results['eval_attack']['name'], eval_attack.eps,
               os.path.join(workdir, 'results.json'))
  return results
