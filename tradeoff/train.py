"""Adversarial training: the pure step and the loop.

The step is a pure module-level function, bound with functools.partial and run
under `jax.pmap(axis_name=parallel.AXIS)` on every local device (one device is
a pmap of one). Gradients, metrics and model state are `lax.pmean`-ed, so k
devices compute the step of the global batch. Randomness is derived, never
stored: the step's key is fold_in(fold_in(root, step), device), and batch s is
a pure function of (seed, s) (data.TrainStream), so a resumed run is the same
run.

The loop checkpoints every `checkpoint_every` steps and, on SIGTERM or SIGINT
(preemption, a scheduler's time limit, Ctrl-C), at the step it has reached:
it saves, says so, and raises `errors.Interrupted`; rerunning the same
command resumes bit-identically.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math
import signal
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoff import data
from tradeoff import distributed
from tradeoff import errors
from tradeoff import evaluators
from tradeoff import experiment
from tradeoff import losses
from tradeoff import parallel
from tradeoff import provenance
from tradeoff import trained
from tradeoff import workdir as workdir_lib
from tradeoff import writers


def eps_scale(step: jax.Array, warmup_steps: int) -> jax.Array | float:
  """Training-ε multiplier: linear from 1/warmup_steps to 1 over warmup_steps, then 1."""
  if warmup_steps <= 0:
    return 1.0
  return jnp.minimum(1.0, (step + 1) / warmup_steps)


def train_step(state: experiment.TrainState, batch, root_rng, *, loss_fn, ctx: losses.Context,
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
  image = batch['image']
  if image.dtype == jnp.uint8:   # streamed pixels travel as u8: 4x less to copy to the device
    image = image.astype(jnp.float32) * jnp.float32(1 / 255)
  batch = {**batch, 'image': augment(k_aug, image)}
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
  """train_step bound to its fixed parts and pmapped over the local devices."""
  step = functools.partial(train_step, loss_fn=loss_fn, ctx=ctx, augment=augment,
                           axis_name=parallel.AXIS, eps_warmup_steps=eps_warmup_steps)
  return jax.pmap(step, axis_name=parallel.AXIS, in_axes=(0, 0, None), donate_argnums=(0,))


class _StopSignals:
  """Records SIGTERM / SIGINT instead of dying, so the loop can save first."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        self._previous[s] = signal.signal(s, self._record)
    return self

  def _record(self, signum, frame):
    del frame
    self.signum = signum

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)


def train_or_load(config, workdir: str) -> dict:
  """results.json of a finished run with this config, else trains (or resumes) it."""
  results = workdir_lib.finished_results(config, workdir)
  if results is not None:
    logging.info('%s already finished; using its results.json', workdir)
    return results
  return train_and_evaluate(config, workdir)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (or resumes) the run in `workdir`, evaluates it, writes results.json.

  The config is validated and the data loaded before anything is written, so
  a bad config leaves no trace and the corrected command can use the same
  workdir.

  Returns:
    The results dict that was written.

  Raises:
    errors.UserError: a bad config, missing data, or a workdir holding another run.
    errors.Interrupted: SIGTERM / SIGINT arrived; a checkpoint at the step
      reached was saved first.
  """
  t_start = time.time()
  commit = provenance.git_commit()  # the code this process runs; HEAD may move meanwhile
  exp = experiment.build(config)
  primary = distributed.is_primary()
  # One trainer per workdir, for the run's whole life (process 0 of a multi-process run).
  lock = workdir_lib.RunLock(workdir).acquire() if primary else None
  try:
    return _train(config, workdir, exp, primary, t_start, commit)
  finally:
    if lock is not None:
      lock.release()


def _train(config, workdir: str, exp: experiment.Experiment, primary: bool, t_start: float,
           commit: str | None) -> dict:
  """train_and_evaluate's body, with the workdir's lock held."""
  if primary:
    workdir_lib.prepare(config, workdir)
    workdir_lib.write_model_record(workdir, experiment.model_record(exp))
  distributed.barrier('workdir prepared')
  if not primary:
    workdir_lib.prepare(config, workdir, write=False)
  cfg, ds = exp.config, exp.ds   # training uses exp.ctx.module, evaluation exp.eval_module
  num_devices = parallel.local_device_count()
  state, lr_schedule, steps = experiment.initial_state(exp)
  _, k_train, k_eval = experiment.rng_streams(cfg.seed)

  mngr, restored, meta = workdir_lib.restore_latest(workdir, state, cfg.max_checkpoints)
  if restored is not None:
    state = restored
    logging.info('Resumed from step %d in %s', int(state.step), workdir)
  train_seconds = meta['train_seconds'] if meta else 0.0
  start_step = int(state.step)
  num_params = sum(a.size for a in jax.tree.leaves(state.params))

  warmup_steps = int(cfg.attack.eps_warmup * steps)
  p_train_step = make_p_train_step(losses.get(cfg.loss.name), exp.ctx,
                                   data.get_augmentation(cfg.data.augment), warmup_steps)
  stream = data.train_stream(ds, cfg.data.batch_size, cfg.seed,
                             process_index=jax.process_index(),
                             process_count=jax.process_count(),
                             crop_scale=tuple(cfg.data.crop_scale))
  evals = evaluators.RunEvaluators(exp, workdir, k_eval)

  writer = writers.MetricWriter(workdir, tensorboard=cfg.tensorboard, enabled=primary)
  progress = writers.Progress(steps, start_step) if cfg.progress_bar and primary else None
  rstate = parallel.replicate(state, num_devices)
  pending: list[tuple[int, dict]] = []
  t_last, steps_since = time.time(), 0

  def flush(step: int):
    """Checks losses since the last flush are finite, then logs their mean."""
    nonlocal t_last, steps_since
    if not pending:
      return
    fetched = jax.device_get([(s, parallel.unreplicate(m)) for s, m in pending])
    for s, m in fetched:
      if not math.isfinite(float(m['loss'])):
        raise FloatingPointError(f'Non-finite training loss {float(m["loss"])} at step {s} '
                                 f'(0-based); stopping. Last checkpoint: {mngr.latest_step()}.')
    scalars = {f'train/{k}': float(np.mean([m[k] for _, m in fetched])) for k in fetched[0][1]}
    elapsed = time.time() - t_last
    scalars['train/learning_rate'] = float(lr_schedule(step - 1))
    scalars['train/eps'] = exp.train_attack.eps * float(eps_scale(step - 1, warmup_steps))
    scalars['train/epoch'] = stream.epoch(step)
    scalars['train/images_per_s'] = steps_since * cfg.data.batch_size / max(elapsed, 1e-9)
    writer.write(step, scalars)
    logging.info('step %d/%d: %s', step, steps,
                 ', '.join(f'{k[6:]}={v:.4g}' for k, v in scalars.items()))
    if progress:
      progress.show(scalars)
    pending.clear()
    t_last, steps_since = time.time(), 0

  def save(done: int):
    # Every process saves (orbax writes the replicated state once and waits for all).
    seconds = train_seconds + time.time() - t_train
    workdir_lib.save_checkpoint(mngr, done, jax.device_get(parallel.unreplicate(rstate)),
                                {'train_seconds': seconds})

  t_train = time.time()
  with _StopSignals() as stop:
    batches = parallel.prefetch_to_device(
        (stream.batch(step) for step in range(start_step, steps)), num_devices)
    for step, batch in zip(range(start_step, steps), batches):
      rstate, metrics = p_train_step(rstate, batch, k_train)
      pending.append((step, metrics))
      steps_since += 1
      if progress:
        progress.update()
      done = step + 1
      is_ckpt = done % cfg.checkpoint_every == 0 or done == steps
      stopping = distributed.any_process(stop.signum is not None)
      if done % cfg.log_every == 0 or is_ckpt or stopping:
        flush(done)
      if cfg.eval_every > 0 and done % cfg.eval_every == 0 and done != steps:
        evals.periodic(rstate, done, writer)
      if is_ckpt or stopping:
        save(done)
      if stopping:
        mngr.wait_until_finished()
        writer.close()
        name = signal.Signals(stop.signum).name if stop.signum else 'another process\'s signal'
        logging.warning('%s at step %d/%d: checkpoint saved in %s; run the same command '
                        'to resume.', name, done, steps, workdir_lib.checkpoint_dir(workdir))
        raise errors.Interrupted(f'stopped by {name} at step {done}/{steps}; checkpoint '
                                 f'saved in {workdir_lib.checkpoint_dir(workdir)}. Run the '
                                 f'same command to resume.', stop.signum or signal.SIGTERM)
  flush(steps)
  train_seconds += time.time() - t_train
  mngr.wait_until_finished()
  if progress:
    progress.close()

  t_eval = time.time()
  final = evals.test(rstate)
  writer.write(steps, evaluators.scalars('eval', final))
  last = evals.periodic(rstate, steps, writer, test=False)
  selection = evals.selection(last, rstate, final, steps)
  eval_seconds = time.time() - t_eval
  writer.close()
  results = {
      'config': workdir_lib.as_json(config),
      'commit': commit,
      'device': provenance.device_description(),
      'host': provenance.host(),
      'versions': provenance.versions(),
      'processes': distributed.describe(),
      'wall_time_s': time.time() - t_start,
      'train_time_s': train_seconds,
      'eval_time_s': eval_seconds,
      'resumed_from_step': start_step,
      'train_steps': steps,
      'num_params': int(num_params),
      # of the final parameters and model state: equal to that of an evaluation of
      # the last checkpoint, so a result can be traced to the exact model
      'variables_sha': trained.variables_digest(
          *jax.device_get(parallel.unreplicate((rstate.params, rstate.model_state)))),
      'data': ds.info,
      'train_attack': {**exp.train_attack.describe(), 'eps_warmup_steps': warmup_steps},
      'eval_attack': exp.eval_attack.describe(),
      **final,
      **selection,
  }
  path = workdir_lib.write_results(workdir, results) if primary else None
  logging.info('clean accuracy %.4f, robust accuracy %.4f (%s, eps=%g) -> %s',
               final['clean_accuracy'], final['robust_accuracy'],
               results['eval_attack']['name'], exp.eval_attack.eps, path)
  return results
