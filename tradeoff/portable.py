"""A trained model outside tradeoff: its variables and preprocessing as plain files.

`export` writes, for a run's checkpoint, two files that need nothing but numpy
and JSON to read (the layout is described in tradeoff/export.py, the command
that calls it); `load` reads them back as a flax module and its variables.
"""
from __future__ import annotations

import json
import os

import flax
import ml_collections
import numpy as np

from tradeoff import experiment
from tradeoff import models
from tradeoff import provenance
from tradeoff import workdir as workdir_lib


def export(workdir: str, output: str | None = None, step: int | None = None) -> str:
  """Writes variables.npz and model.json of a run's checkpoint; returns the directory."""
  config = workdir_lib.load_config(workdir)
  exp, states = experiment.restore(config, workdir, None if step is None else [step])
  state = states[max(states)]
  variables = {'params': state.params, **(state.model_state or {})}
  flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables), sep='/')
  record = experiment.model_record(exp)
  results = workdir_lib.read_results(workdir) or {}
  record.update({
      'format': 'tradeoff-export-1',
      'checkpoint_step': int(state.step), 'workdir': os.path.abspath(workdir),
      'num_outputs': int(exp.eval_module.num_outputs),
      'train_attack': exp.train_attack.describe(), 'eval_attack': exp.eval_attack.describe(),
      'accuracy': {k: results[k] for k in ('clean_accuracy', 'robust_accuracy')
                   if k in results},
      'train_commit': results.get('commit'), 'export_commit': provenance.git_commit()})
  out = output or os.path.join(workdir, 'export')
  os.makedirs(out, exist_ok=True)
  np.savez(os.path.join(out, 'variables.npz'), **{k: np.asarray(v) for k, v in flat.items()})
  workdir_lib.write_json(os.path.join(out, 'model.json'), record)
  return out


def load(path: str):
  """(module, variables, record) of an export; module.apply(variables, x, train=False)."""
  with open(os.path.join(path, 'model.json')) as f:
    record = json.load(f)
  with np.load(os.path.join(path, 'variables.npz')) as z:
    variables = flax.traverse_util.unflatten_dict({k: z[k] for k in z.files}, sep='/')
  norm = record['normalization']
  module = models.build(ml_collections.ConfigDict(record['model']), record['num_classes'],
                        norm['mean'], norm['std'])
  return module, variables, record
