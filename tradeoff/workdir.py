"""A run's directory: the only code that knows its file names and writes its files.

A workdir is a local path or a URL (`gs://bucket/run`): every file goes through
etils.epath, and orbax writes its checkpoints to the same place. Every write is
atomic: a temporary name then a rename on a local disk, one object upload on
cloud storage, so a reader never sees half a file. On cloud storage epath uses
fsspec's gcsfs: tradeoff/__init__.py sets EPATH_USE_TF=false unless the user set
it, where epath would otherwise pick TensorFlow's gfile.

    <workdir>/config.json    the config the run was started with (unresolved: the
                             attack steps follow later command-line overrides)
    <workdir>/model.json     everything needed to rebuild the model outside the
                             data pipeline: architecture config, classes, the
                             normalisation mean/std, input shape and box
    <workdir>/checkpoints/   orbax: <step>/state (TrainState) + <step>/meta (JSON)
    <workdir>/metrics.jsonl  one JSON line per log step (writers.py)
    <workdir>/results.json   the finished run: config, provenance, accuracies
    <workdir>/evaluations/   re-evaluations of its checkpoints (tradeoff.evaluate)
    <workdir>/tensorboard/   TensorBoard event files (writers.py)
    <workdir>/export/        variables.npz + model.json (tradeoff.export)
    <workdir>/lock.json      the trainer that holds the run (pid, host, start)

It also owns the compatibility rules: which config fields may change when a
run is resumed (RESUMABLE_CHANGES), which fields were added to the schema
later and what their absence means (ADDED_FIELDS), and how older configs are
read (`upgrade`).

Orbax writes a checkpoint step into a temporary directory and renames it when
complete, so a run killed mid-save still finds its previous checkpoint; a
checkpoint damaged afterwards (a truncated file) is moved aside with a warning
and the newest readable one is used instead (`restore_latest`).
"""
from __future__ import annotations

import copy
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from etils import epath
import fsspec
import jax
import ml_collections
import orbax.checkpoint as ocp

from tradeoff import configlib
from tradeoff import errors

# Fields that may change when a run is resumed: they do not change what is trained.
RESUMABLE_CHANGES = ('log_every', 'checkpoint_every', 'eval_every', 'eval_train_examples',
                     'max_checkpoints',
                     'data.data_dir', 'data.download', 'data.workers', 'model.eval_dtype',
                     'tensorboard', 'progress_bar')

# Config fields added to the schema after runs were made with it, and the value
# that reproduces the older behaviour: a saved config without the field is read
# as having that value, so older runs still resume and count as finished.
ADDED_FIELDS = {'model.keep_features': [], 'num_robust_eval_examples': 0, 'loss.sigma': 0.0,
                'data.validation_size': 0, 'eval_train_examples': 0,
                'data.labelled_size': 0, 'data.pseudo_label_from': '',
                'model.depth': 50, 'model.dtype': 'float32',
                'data.image_size': 224, 'data.eval_resize': 0, 'data.crop_scale': [0.08, 1.0],
                'data.workers': 16, 'model.eval_dtype': 'float32',
                'attack.name': 'pgd', 'attack.targets': 9,
                'eval_attack.name': 'pgd', 'eval_attack.targets': 9,
                'attack.autoattack': configlib.autoattack_config().to_dict(),
                'eval_attack.autoattack': configlib.autoattack_config().to_dict()}

DAMAGED_DIR = 'damaged'

# A run's files are written by other processes (the trainer, a sweep's runs, an
# evaluation elsewhere): gcsfs must list cloud storage afresh each time instead
# of answering from a listing it cached earlier in this process.
fsspec.config.conf.setdefault('gcs', {}).setdefault('use_listings_cache', False)


def _flat(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _set_default(node: dict, key: str, default) -> None:
  """node[key] = default where absent; a group (dict) gets its missing fields."""
  if key not in node:
    node[key] = copy.deepcopy(default)
  elif isinstance(default, dict) and isinstance(node[key], dict):
    for k, v in default.items():
      _set_default(node[key], k, v)


def upgrade(saved: dict) -> dict:
  """A saved config in today's schema.

  Fields added to the schema later get the value that reproduces the older
  behaviour (ADDED_FIELDS). Attack blocks once held `rel_step_size` r (step =
  r·ε); today they hold `step_scale` s (step = s·ε/num_steps), so
  s = r·num_steps gives the same step.
  """
  saved = json.loads(json.dumps(saved))
  for dotted, default in ADDED_FIELDS.items():
    *parents, leaf = dotted.split('.')
    node = saved
    for p in parents:
      node = node.setdefault(p, {})
    _set_default(node, leaf, default)
  for block in configlib.ATTACK_BLOCKS:
    b = saved.get(block)
    if isinstance(b, dict) and 'rel_step_size' in b:
      b['step_scale'] = round(b.pop('rel_step_size') * max(b['num_steps'], 1), 10)
  return saved


def as_json(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort())


def flat_config(saved: dict) -> dict:
  """A saved config in today's schema as {dotted key: value}."""
  return _flat(upgrade(saved))


def config_diff(saved: dict, new: dict) -> list[str]:
  """Dotted keys whose values differ, ignoring RESUMABLE_CHANGES and ADDED_FIELDS defaults."""
  saved, new = flat_config(saved), flat_config(new)
  return sorted(k for k in set(saved) | set(new)
                if saved.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)


# ---------------------------------------------------------------------------
# Files, local or on cloud storage.

def is_url(path: str) -> bool:
  return '://' in str(path)


def absolute(path: str) -> str:
  """A local path made absolute; a URL as it is (os.path.abspath('gs://b') is './gs:/b')."""
  return str(path) if is_url(path) else os.path.abspath(path)


def join(*parts) -> str:
  return str(epath.Path(*[str(p) for p in parts])) if is_url(parts[0]) else os.path.join(
      *[str(p) for p in parts])


def exists(path: str) -> bool:
  return epath.Path(path).exists()


def makedirs(path: str) -> None:
  """Creates a local directory (cloud storage has no directories to create)."""
  if not is_url(path):
    os.makedirs(path, exist_ok=True)


def read_bytes(path: str) -> bytes:
  return epath.Path(path).read_bytes()


def read_text(path: str) -> str:
  return epath.Path(path).read_text()


def write_bytes(path: str, payload: bytes) -> None:
  """Writes `payload` atomically: a reader sees the old file or the new one."""
  path = str(path)
  if is_url(path):
    epath.Path(path).write_bytes(payload)   # one object upload: atomic on GCS
    return
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f'{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
  try:
    with open(tmp, 'wb') as f:
      f.write(payload)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path: str, text: str) -> None:
  write_bytes(path, text.encode())


def read_json(path: str) -> dict:
  try:
    return json.loads(read_text(path))
  except json.JSONDecodeError as e:
    raise errors.UserError(f'{path} is not valid JSON ({e}); the file is damaged.') from e



def write_json(path: str, payload: dict, indent: int = 2) -> None:
  write_text(path, json.dumps(payload, indent=indent))


def remove(path: str) -> None:
  p = epath.Path(path)
  if p.exists():
    p.unlink()


def prepare(config: ml_collections.ConfigDict, workdir: str, write: bool = True) -> None:
  """Creates the workdir and saves config.json, or checks that a resumed run
  trains what was started there. write=False only checks (the processes of a
  multi-process run other than the first)."""
  if write:
    makedirs(workdir)
  path = join(workdir, 'config.json')
  current = as_json(config)
  if exists(path):
    saved = read_json(path)
    diff = config_diff(saved, current)
    if diff:
      saved_flat, new_flat = flat_config(saved), _flat(current)
      details = '; '.join(f'{k}: {saved_flat.get(k)!r} -> {new_flat.get(k)!r}' for k in diff)
      raise errors.UserError(f'{workdir} holds a run with a different config ({details}). '
                             f'Use a new --workdir, or the same config to resume.')
  if write:
    write_json(path, current)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config.json as a ConfigDict whose fields can all be overridden."""
  path = join(workdir, 'config.json')
  if not exists(path):
    raise errors.DataNotFoundError(
        f'{path} not found: --workdir={workdir} is not a tradeoff run directory.')
  return configlib.from_json(upgrade(read_json(path)))


def write_model_record(workdir: str, record: dict) -> None:
  write_json(join(workdir, 'model.json'), record)


def read_model_record(workdir: str) -> dict | None:
  """model.json (tradeoff.trained reads runs through it), None for a run older than it."""
  path = join(workdir, 'model.json')
  return read_json(path) if exists(path) else None


def results_path(workdir: str) -> str:
  return join(workdir, 'results.json')


def write_results(workdir: str, results: dict) -> str:
  path = results_path(workdir)
  write_json(path, results)
  return path


def read_results(workdir: str) -> dict | None:
  path = results_path(workdir)
  return read_json(path) if exists(path) else None


def metrics_path(workdir: str) -> str:
  return join(workdir, 'metrics.jsonl')


def tensorboard_dir(workdir: str) -> str:
  return join(workdir, 'tensorboard')


def progress_dir(workdir: str) -> str:
  """Where killed cascade (AutoAttack) evaluations keep their progress."""
  return join(workdir, 'evaluations', 'progress')


def finished_results(config: ml_collections.ConfigDict, workdir: str) -> dict | None:
  """The run's results.json if it finished with this config (modulo RESUMABLE_CHANGES)."""
  results = read_results(workdir)
  if results is None:
    return None
  return None if config_diff(results.get('config', {}), as_json(config)) else results


def evaluation_path(workdir: str, attack: dict) -> str:
  """Where tradeoff.evaluate writes a re-evaluation under `attack` (Attack.describe())."""
  name = f"{attack['norm']}_eps{attack['eps']:g}_{attack['name']}x{attack['restarts']}"
  return join(workdir, 'evaluations', name + '.json')


# ---------------------------------------------------------------------------
# Checkpoints.

def checkpoint_dir(workdir: str) -> str:
  return absolute(join(workdir, 'checkpoints'))


def checkpoint_manager(workdir: str, max_to_keep: int = 3,
                       create: bool = True) -> ocp.CheckpointManager:
  """The run's orbax manager; create=False only reads (nothing is made, cleaned or deleted)."""
  if create:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=True)
  else:
    # (read_only=True would say so in a warning at every open)
    options = ocp.CheckpointManagerOptions(max_to_keep=None, create=False,
                                           cleanup_tmp_directories=False)
  return ocp.CheckpointManager(epath.Path(checkpoint_dir(workdir)), options=options,
                               item_names=('state', 'meta'))


def best_checkpoint_dir(workdir: str) -> str:
  return absolute(join(workdir, 'best_checkpoint'))


def best_checkpoint_manager(workdir: str) -> ocp.CheckpointManager:
  """The one checkpoint with the best validation robust accuracy so far (its meta
  says which step and what it scored)."""
  return ocp.CheckpointManager(
      epath.Path(best_checkpoint_dir(workdir)),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           cleanup_tmp_directories=True),
      item_names=('state', 'meta'))


def best_checkpoint_meta(mngr: ocp.CheckpointManager) -> dict | None:
  """The meta of the kept best checkpoint, or None before the first is saved."""
  step = mngr.latest_step()
  if step is None:
    return None
  return dict(mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta'])


def save_checkpoint(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(meta)))


def restore_checkpoint(mngr: ocp.CheckpointManager, step: int, like: Any) -> tuple[Any, dict]:
  """(state, meta) of the checkpoint at `step`, shaped like `like`."""
  if step not in mngr.all_steps():
    raise errors.DataNotFoundError(f'No checkpoint at step {step} in {mngr.directory}; '
                                   f'saved steps: {sorted(mngr.all_steps())}.')
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                   meta=ocp.args.JsonRestore()))
  return out['state'], dict(out['meta'])


def raw_state(workdir: str, step: int | None = None) -> dict:
  """The arrays of a checkpoint ({'params': ..., 'opt_state': ..., ...}, the newest
  when `step` is None) as saved, without a template of their structure."""
  mngr = checkpoint_manager(workdir)
  step = mngr.latest_step() if step is None else step
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  mngr.close()
  return restored['state']


def restore_latest(workdir: str, like: Any, max_to_keep: int = 3
                   ) -> tuple[ocp.CheckpointManager, Any, dict | None]:
  """(manager, state, meta) of the newest readable checkpoint, or (manager, None, None).

  A checkpoint that cannot be read (a truncated array or metadata file) is
  moved to checkpoints/damaged/<step> with a warning naming it, and the next
  older one is tried; it is an error only when checkpoints exist and none of
  them can be read.
  """
  mngr = checkpoint_manager(workdir, max_to_keep)
  damaged = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state, meta = restore_checkpoint(mngr, step, like)
    except Exception as e:  # pylint: disable=broad-except  (any unreadable file)
      path = join(checkpoint_dir(workdir), str(step))
      logging.warning('Checkpoint at step %d (%s) cannot be read (%s: %s); trying an older '
                      'one.', step, path, type(e).__name__, str(e).splitlines()[0][:300])
      damaged.append(step)
      mngr.close()  # a failed restore can leave the manager's async I/O half-done
      mngr = checkpoint_manager(workdir, max_to_keep)
      continue
    if damaged:
      mngr = _set_aside(workdir, mngr, damaged, max_to_keep)
      logging.warning('Resuming from step %d; damaged checkpoints %s moved to %s.', step,
                      damaged, join(checkpoint_dir(workdir), DAMAGED_DIR))
    return mngr, state, meta
  if damaged:
    raise errors.DataNotFoundError(
        f'No readable checkpoint in {checkpoint_dir(workdir)}: steps {damaged} are all '
        f'damaged. Move them away to train from scratch in this workdir.')
  return mngr, None, None


def _set_aside(workdir, mngr, steps, max_to_keep):
  """Moves damaged step directories out of orbax's view, so the resumed run can
  save those steps again; returns a manager that no longer lists them."""
  mngr.close()
  root = epath.Path(checkpoint_dir(workdir))
  (root / DAMAGED_DIR).mkdir(parents=True, exist_ok=True)
  for step in steps:
    target = root / DAMAGED_DIR / str(step)
    if target.exists():
      target.rmtree()
    (root / str(step)).rename(target)
  return checkpoint_manager(workdir, max_to_keep)


# ---------------------------------------------------------------------------
# One trainer per run.

def lock_path(workdir: str) -> str:
  return join(workdir, 'lock.json')


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:   # another user's process
    return True
  return True


class RunLock:
  """`lock.json` in the workdir for the trainer's life: its process id, host and
  start time. A second trainer fails at once naming the holder; a lock left by
  a process that no longer runs on this host (SIGKILL, a crash) is taken over
  with a warning. On cloud storage the check and the write are two requests,
  so two trainers started within the same second could both pass."""

  def __init__(self, workdir: str):
    self.workdir, self.path = workdir, lock_path(workdir)
    self.me = {'pid': os.getpid(), 'host': socket.gethostname(),
               'started': time.strftime('%Y-%m-%dT%H:%M:%S%z')}

  def _holder(self) -> dict | None:
    try:
      return json.loads(read_text(self.path))
    except (FileNotFoundError, json.JSONDecodeError, OSError):
      return None

  def _create(self) -> bool:
    payload = json.dumps(self.me).encode()
    if is_url(self.path):
      if exists(self.path):
        return False
      write_bytes(self.path, payload)
      return True
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, 'wb') as f:
      f.write(payload)
    return True

  def acquire(self) -> 'RunLock':
    makedirs(self.workdir)
    for _ in range(3):
      if self._create():
        return self
      holder = self._holder()
      if holder is None:   # removed meanwhile, or a write in flight: look again
        time.sleep(0.2)
        holder = self._holder()
        if holder is None:
          remove(self.path)
          continue
      if holder.get('host') == self.me['host'] and not _alive(int(holder.get('pid', -1))):
        logging.warning('Taking over the lock of a trainer that no longer runs (pid %s on %s, '
                        'started %s): %s.', holder.get('pid'), holder.get('host'),
                        holder.get('started'), self.path)
        remove(self.path)
        continue
      raise errors.UserError(
          f'{self.workdir} is being trained by pid {holder.get("pid")} on {holder.get("host")} (started '
          f'{holder.get("started")}); one trainer per workdir. If that process is gone, '
          f'delete {self.path}.')
    raise errors.UserError(f'Could not take the lock {self.path}: it keeps changing.')

  def release(self) -> None:
    holder = self._holder()
    if holder is not None and holder.get('pid') == self.me['pid'] and (
        holder.get('host') == self.me['host']):
      remove(self.path)

  def __enter__(self) -> 'RunLock':
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
