"""A trained run as an artifact: model.json plus the checkpoint's arrays.

    run = trained.load('runs/mnist_linf')          # newest readable checkpoint
    logits = run.logits(x)                         # x f32[B, 28, 28, 1] in [0, 1]
    trained.export('runs/mnist_linf', 'export/')   # variables.npz + model.json
    module, variables, record = trained.load_export('export/')

Opening a run needs nothing of its training experiment: no data, no optimiser,
no loss function (a run trained with `loss.name=my_module:fn` opens where
`my_module` does not exist, and nothing its config names is imported), no
teacher (a robust self-training run opens without re-labelling anything).
`model.json` (written by training before the first step) holds the
architecture, the number of classes, the normalisation and the input box; the
checkpoint's `params` and `model_state` are read without a template, on one
device, so a run saved on 8 devices opens on a laptop.

Runs written before model.json existed still open: their record is rebuilt by
building the training experiment from config.json, as every command used to.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import logging
from typing import Any

import flax
import flax.linen as nn
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from tradeoff import errors
from tradeoff import models
from tradeoff import parallel
from tradeoff import provenance
from tradeoff import workdir as workdir_lib

EXPORT_FORMAT = 'tradeoff-export-1'


@dataclasses.dataclass(frozen=True)
class Trained:
  """One checkpoint of a run, ready to apply.

  Attributes:
    workdir: the run directory (a local path or a URL such as gs://bucket/run).
    config: the run's config.json (today's schema; attack blocks unresolved).
    record: model.json: model config, num_classes, input shape and range,
      normalisation, dataset, class names.
    step: the checkpoint's step.
    params: the model's parameters (host arrays).
    model_state: the other flax collections (BatchNorm statistics), {} if none.
    module: the model as training computed it.
    eval_module: the model as evaluation computes it (models.eval_config).
  """
  workdir: str
  config: ml_collections.ConfigDict
  record: dict
  step: int
  params: Any
  model_state: Any
  module: nn.Module
  eval_module: nn.Module

  @property
  def variables(self) -> dict:
    """{'params': ..., **model_state}: what `module.apply` takes."""
    return {'params': self.params, **(self.model_state or {})}

  @property
  def num_classes(self) -> int:
    return int(self.record['num_classes'])

  @property
  def bounds(self) -> tuple[float, float] | None:
    box = self.record.get('input_range')
    return None if box is None else (float(box[0]), float(box[1]))

  @functools.cached_property
  def variables_sha(self) -> str:
    return variables_digest(self.params, self.model_state)

  @functools.cached_property
  def _logits_fn(self):
    module = self.eval_module
    return jax.jit(lambda p, s, x: models.apply(module, p, s, x, False)[0])

  def logits(self, x) -> jax.Array:
    """Logits f32[B, K] of inputs f32[B, ...] in the run's input box, inference mode."""
    return self._logits_fn(self.params, self.model_state, x)


def _tuples(tree):
  """Lists (as JSON gives them back) as tuples, so the module's fields hash."""
  if isinstance(tree, dict):
    return {k: _tuples(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return tuple(_tuples(v) for v in tree)
  return tree


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


def build_modules(record: dict, eval_dtype: str | None = None) -> tuple[nn.Module, nn.Module]:
  """(training module, evaluation module) of a model record. eval_dtype, when
  given, replaces the record's model.eval_dtype."""
  cfg = ml_collections.ConfigDict(_tuples(record['model']))
  if eval_dtype is not None:
    cfg.eval_dtype = eval_dtype
  norm = record['normalization']
  return models.build_pair(cfg, int(record['num_classes']), norm['mean'], norm['std'],
                           bn_axis_name=parallel.AXIS)


def checkpoint_steps(workdir: str) -> list[int]:
  """The saved checkpoint steps of a run, oldest first."""
  mngr = workdir_lib.checkpoint_manager(workdir, create=False)
  try:
    return sorted(int(s) for s in mngr.all_steps())
  finally:
    mngr.close()


def _restore_arrays(mngr: ocp.CheckpointManager, step: int) -> dict:
  """The checkpoint's state arrays as saved, each on this process's first device."""
  meta = mngr.item_metadata(step)['state']
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                          meta.tree if hasattr(meta, 'tree') else meta)
  out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                   meta=ocp.args.JsonRestore()))
  return jax.device_get(out['state'])


def model_record(workdir: str) -> dict:
  """The run's model.json, or for a run written before model.json existed, the
  record rebuilt from its training experiment (which loads its data)."""
  record = workdir_lib.read_model_record(workdir)
  if record is not None:
    return record
  from tradeoff import experiment  # pylint: disable=g-import-not-at-top  (older runs only)
  logging.warning('%s has no model.json (a run from before it was written); rebuilding the '
                  'model from its training config and data.', workdir)
  return experiment.model_record(experiment.build(workdir_lib.load_config(workdir)))


def load(workdir: str, step: int | None = None, eval_dtype: str | None = None,
         config: ml_collections.ConfigDict | None = None) -> Trained:
  """Opens checkpoint `step` of a run (None: the newest readable one).

  Args:
    workdir: a training run directory.
    step: a saved step, or None for the newest that can be read (a damaged
      newer one is skipped with a warning; nothing in the run is changed).
    eval_dtype: overrides model.eval_dtype ('float32', 'bfloat16', '' for the
      training dtype).
    config: the run's config with overrides (default: its config.json).

  Raises:
    errors.DataNotFoundError: not a run, no checkpoint, or no readable one.
  """
  make = _opener(workdir, eval_dtype, config)
  mngr = workdir_lib.checkpoint_manager(workdir, create=False)
  try:
    saved = _saved_steps(mngr, workdir, [] if step is None else [step])
    failed = []
    for s in ([step] if step is not None else saved[::-1]):
      try:
        state = _restore_arrays(mngr, s)
      except Exception as e:  # pylint: disable=broad-except  (any unreadable file)
        if step is not None:
          raise errors.DataNotFoundError(f'Checkpoint {s} of {workdir} cannot be read '
                                         f'({type(e).__name__}: {str(e)[:300]}).') from e
        logging.warning('Checkpoint at step %d of %s cannot be read (%s); trying an older '
                        'one.', s, workdir, str(e).splitlines()[0][:300] if str(e) else e)
        failed.append(s)
        continue
      return make(s, state)
    raise errors.DataNotFoundError(f'No readable checkpoint in '
                                   f'{workdir_lib.checkpoint_dir(workdir)}: steps {failed} '
                                   f'are all damaged.')
  finally:
    mngr.close()


def load_all(workdir: str, steps=None) -> dict[int, Trained]:
  """{step: Trained} for `steps` (None: every saved step), the run opened once."""
  make = _opener(workdir, None, None)
  mngr = workdir_lib.checkpoint_manager(workdir, create=False)
  try:
    saved = _saved_steps(mngr, workdir, [] if steps is None else [int(s) for s in steps])
    return {int(s): make(int(s), _restore_arrays(mngr, int(s)))
            for s in (saved if steps is None else steps)}
  finally:
    mngr.close()


def _opener(workdir: str, eval_dtype: str | None, config):
  """What every checkpoint of the run shares (config, record, modules), as a
  function (step, restored state arrays) -> Trained."""
  config = workdir_lib.load_config(workdir) if config is None else config
  record = model_record(workdir)
  if eval_dtype is None:
    eval_dtype = config.model.get('eval_dtype', record['model'].get('eval_dtype'))
  module, eval_module = build_modules(record, eval_dtype)

  def make(step: int, state: dict) -> Trained:
    return Trained(workdir=workdir, config=config, record=record, step=int(step),
                   params=state['params'], model_state=state.get('model_state') or {},
                   module=module, eval_module=eval_module)
  return make


def _saved_steps(mngr: ocp.CheckpointManager, workdir: str, wanted: list[int]) -> list[int]:
  """The saved steps, oldest first; an error when there are none or one of
  `wanted` is not among them."""
  saved = sorted(int(s) for s in mngr.all_steps())
  if not saved:
    raise errors.DataNotFoundError(f'No checkpoint in {workdir_lib.checkpoint_dir(workdir)}.')
  for step in wanted:
    if step not in saved:
      raise errors.DataNotFoundError(f'No checkpoint at step {step} in '
                                     f'{workdir_lib.checkpoint_dir(workdir)}; saved steps: '
                                     f'{saved}.')
  return saved


# ---------------------------------------------------------------------------
# Exports: variables.npz + model.json, readable with numpy and JSON alone.

def export(workdir: str, output: str | None = None, step: int | None = None) -> str:
  """Writes variables.npz and model.json of a run's checkpoint; returns the directory.

  Reads only the run's files (config.json, model.json, results.json and the
  checkpoint): no data, loss module or teacher.
  """
  run = load(workdir, step)
  results = workdir_lib.read_results(workdir) or {}
  record = dict(run.record)
  record.update({
      'format': EXPORT_FORMAT,
      'checkpoint_step': run.step, 'workdir': workdir_lib.absolute(workdir),
      'variables_sha': run.variables_sha,
      'num_outputs': int(run.eval_module.num_outputs),
      'train_attack': _attack_description(run.config, 'attack', run.bounds),
      'eval_attack': _attack_description(run.config, 'eval_attack', run.bounds),
      'accuracy': {k: results[k] for k in ('clean_accuracy', 'robust_accuracy')
                   if k in results},
      'train_commit': results.get('commit'), 'export_commit': provenance.git_commit()})
  return write_export(output or workdir_lib.join(workdir, 'export'), run.variables, record)


def write_export(out: str, variables, record: dict) -> str:
  """Writes `variables` (flattened with '/') as variables.npz and `record` as
  model.json into `out`; returns `out`."""
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables), sep='/')
  buf = io.BytesIO()
  np.savez(buf, **{k: np.asarray(v) for k, v in flat.items()})
  workdir_lib.write_bytes(workdir_lib.join(out, 'variables.npz'), buf.getvalue())
  workdir_lib.write_json(workdir_lib.join(out, 'model.json'), record)
  return out


def _attack_description(config, block: str, bounds) -> dict:
  """The run's attack block as `Attack.describe()` gives it, without importing
  anything the config's loss names."""
  from tradeoff import attacks  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  return attacks.from_config(configlib.resolve(config)[block], bounds).describe()


def load_export(path: str):
  """(module, variables, record) of an export; module.apply(variables, x, train=False)."""
  record = workdir_lib.read_json(workdir_lib.join(path, 'model.json'))
  with np.load(io.BytesIO(workdir_lib.read_bytes(workdir_lib.join(path, 'variables.npz')))) as z:
    variables = flax.traverse_util.unflatten_dict({k: z[k] for k in z.files}, sep='/')
  norm = record['normalization']
  module = models.build(ml_collections.ConfigDict(_tuples(record['model'])),
                        record['num_classes'], norm['mean'], norm['std'])
  return module, variables, record
