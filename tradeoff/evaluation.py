"""Evaluating a trained run's checkpoint: the library behind `tradeoff.evaluate`.

    results = evaluation.evaluate_checkpoint(config, workdir)

The model and its variables come from the run itself (tradeoff.trained:
model.json + checkpoint); the config (the run's config.json with any
overrides) says only what to evaluate: the test examples (`data`,
`num_eval_examples`, `num_robust_eval_examples`) and the attack
(`eval_attack`). Nothing of training is rebuilt: no optimiser, no loss module
(a run trained with `loss.name=my_module:fn` is evaluated where `my_module`
does not exist, and nothing the config names is imported), no teacher.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from tradeoff import accuracy
from tradeoff import attacks
from tradeoff import data
from tradeoff import errors
from tradeoff import experiment
from tradeoff import imagenet  # noqa: F401  (registers 'imagenet2012', 'restricted_imagenet')
from tradeoff import parallel
from tradeoff import provenance
from tradeoff import registry
from tradeoff import synthetic  # noqa: F401  (registers the 'synthetic' dataset)
from tradeoff import trained
from tradeoff import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """A run's checkpoint with what an evaluation of it needs.

  Attributes:
    run: the trained model (tradeoff.trained).
    config: the evaluation's config, attack blocks resolved.
    ds: the run's dataset (its test split is what is evaluated).
    eval_attack: the attack.
  """
  run: trained.Trained
  config: ml_collections.ConfigDict
  ds: data.Dataset
  eval_attack: attacks.Attack

  @property
  def eval_module(self):
    return self.run.eval_module


def open_evaluation(config: ml_collections.ConfigDict, workdir: str,
                    step: int | None = None) -> Evaluation:
  """Opens `workdir`'s checkpoint (newest readable when step is None) and the test
  data `config` names; checks the evaluation's config first."""
  for name in ('num_eval_examples', 'num_robust_eval_examples'):
    experiment.check_positive(name, config[name], 0)
  registry.check_choice('data.name', config.data.name, data.DATASETS.names())
  experiment.check_batch_size('data.eval_batch_size', config.data.eval_batch_size)
  resolved = experiment.validate_attacks(config)
  run = trained.load(workdir, step, eval_dtype=config.model.get('eval_dtype'), config=config)
  ds = data.load(resolved.data, resolved.seed)
  if ds.num_classes != run.num_classes:
    raise errors.UserError(f'data {resolved.data.name!r} (classes {tuple(resolved.data.classes)}'
                           f') has {ds.num_classes} classes; the model in {workdir} has '
                           f'{run.num_classes}.')
  return Evaluation(run, resolved, ds, attacks.from_config(resolved.eval_attack, ds.bounds,
                                                           num_classes=run.num_classes))


# ---------------------------------------------------------------------------
# A run's config re-aimed: the evaluation attacks of the accuracy table and the
# attack-cost benchmark.

def threat_config(workdir: str, norm: str, eps: float, num_examples: int):
  """The run's config evaluated at (norm, eps): robust accuracy on the first
  num_examples test images, clean accuracy on all of them."""
  config = workdir_lib.load_config(workdir)
  config.eval_attack.norm, config.eval_attack.eps = norm, float(eps)
  config.num_robust_eval_examples = int(num_examples)
  config.num_eval_examples = 0
  return config


def strong_pgd_config(workdir: str, norm: str, eps: float, atk_spec):
  """The run's config with its evaluation attack replaced by the PGD block `atk_spec`
  (num_steps, restarts, step_scale, num_examples): the accuracy table's attack."""
  config = threat_config(workdir, norm, eps, atk_spec.num_examples)
  ea = config.eval_attack
  ea.num_steps, ea.restarts = int(atk_spec.num_steps), int(atk_spec.restarts)
  ea.random_start = True
  ea.step_scale, ea.step_size = float(atk_spec.step_scale), None
  return config


def autoattack_config(workdir: str, norm: str, eps: float, aa_spec):
  """The run's config with its evaluation attack replaced by AutoAttack."""
  config = threat_config(workdir, norm, eps, aa_spec.num_examples)
  config.eval_attack.name = str(aa_spec.name)
  config.eval_attack.autoattack = ml_collections.ConfigDict(aa_spec.settings.to_dict())
  return config


def cascade_progress(ev, workdir: str, step: int, num_eval: int, variables_sha: str):
  """Where a cascade (AutoAttack) evaluation of `workdir`'s checkpoint `step`
  (whose parameters and model state have digest `variables_sha`) saves its
  progress, so that a killed one resumes (None for other attacks):
  `<workdir>/evaluations/progress/<hash of what is evaluated>.json`. A model
  trained again into the same workdir starts a fresh evaluation unless its
  variables are bit-identical."""
  if not isinstance(ev.eval_attack, attacks.Cascade):
    return None
  key = {'eval_attack': ev.eval_attack.describe(), 'checkpoint_step': step,
         'variables_sha': variables_sha,
         'num_eval_examples': num_eval,
         'num_robust_eval_examples': int(ev.config.num_robust_eval_examples),
         'eval_batch_size': int(ev.config.data.eval_batch_size),
         'seed': int(ev.config.seed), 'data': str(ev.config.data.name),
         # the same name from other files (e.g. an approximate copy) is other data
         'data_source': [ev.ds.info.get(k) for k in ('source', 'approximate_copy')],
         'devices': jax.device_count()}
  digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
  return accuracy.CascadeProgress(
      workdir_lib.join(workdir_lib.progress_dir(workdir), f'{digest}.json'), key)


def _progress_of(ev: Evaluation, workdir: str):
  x_eval, y_eval = experiment.eval_split(ev.config, ev.ds)
  return x_eval, y_eval, cascade_progress(ev, workdir, ev.run.step, len(y_eval),
                                          ev.run.variables_sha)


def cascade_progress_of(config: ml_collections.ConfigDict, workdir: str):
  """The progress of an unfinished cascade (AutoAttack) evaluation of `workdir`'s
  newest checkpoint under `config`, as `evaluate_checkpoint` saved it: the saved
  record (CascadeProgress.load: the robust mask, the finished stages, where it
  stopped) with the cascade's stage names, the number of points it attacks,
  the model's variables_sha and the progress file's path; None when there is no
  such progress (not a cascade, never started, finished, or another model's)."""
  ev = open_evaluation(config, workdir)
  _, y_eval, progress = _progress_of(ev, workdir)
  if progress is None:
    return None
  m = accuracy.num_attacked(int(ev.config.num_robust_eval_examples), len(y_eval))
  saved = progress.load(m)
  if saved is None:
    return None
  return {'saved': saved, 'stages': [st.describe()['name'] for st in ev.eval_attack.stages],
          'eval_attack': ev.eval_attack.describe(), 'num_robust_examples': m,
          'checkpoint_step': ev.run.step, 'variables_sha': ev.run.variables_sha,
          'path': progress.path}


def configured_targets(block) -> int:
  """How many targets the attack block asks of its targeted stages (0: none): the
  number before it is cut to the model's classes, which the checks compare."""
  name = block.get('name', 'pgd')
  if name.startswith('autoattack'):
    return int(block.autoattack.targets)
  return int(block.get('targets', 9)) if name in ('apgd_t', 'fab_t') else 0


# How many test points the model checks look at (accuracy.model_checks).
CHECK_POINTS = 64


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Opens the newest checkpoint of `workdir` and evaluates config.eval_attack."""
  t0 = time.time()
  commit = provenance.git_commit()  # the code this process runs; the tree may change meanwhile
  ev = open_evaluation(config, workdir)
  x_eval, y_eval, progress = _progress_of(ev, workdir)
  num_devices = parallel.local_device_count()
  _, _, rng = experiment.rng_streams(ev.config.seed)  # as in training: same numbers
  checks = accuracy.model_checks(ev.eval_module, ev.run.params, ev.run.model_state,
                                 x_eval[:CHECK_POINTS], y_eval[:CHECK_POINTS],
                                 configured_targets(ev.config.eval_attack))
  for line in checks['warnings']:
    logging.warning('%s: %s', workdir, line)
  result = accuracy.evaluate_clean_and_robust(
      ev.eval_module, ev.eval_attack, parallel.replicate(ev.run.params, num_devices),
      parallel.replicate(ev.run.model_state, num_devices), x_eval, y_eval,
      ev.config.data.eval_batch_size, rng, ev.config.num_robust_eval_examples,
      progress=progress)
  return {'workdir': workdir_lib.absolute(workdir), 'checkpoint_step': ev.run.step,
          'variables_sha': ev.run.variables_sha,
          'config': workdir_lib.as_json(config),
          'commit': commit, 'device': provenance.device_description(),
          'host': provenance.host(), 'versions': provenance.versions(),
          # with the time of the parts a killed earlier evaluation finished
          'wall_time_s': time.time() - t0 + result.get('resumed', {}).get('earlier_time_s', 0.0),
          'data': ev.ds.info,
          'checks': {**checks, **accuracy.masking_flags(result)},
          'eval_attack': ev.eval_attack.describe(), **result}


@dataclasses.dataclass(frozen=True)
class Restored:
  """A run's newest checkpoint ready to attack: its evaluation, the parameters
  and model state replicated over the local devices, the run's evaluation key,
  and the first test examples (x, y)."""
  exp: Evaluation
  state: trained.Trained
  params: Any
  model_state: Any
  rng: jax.Array
  x: Any
  y: np.ndarray


def restore_for_evaluation(config: ml_collections.ConfigDict, workdir: str,
                           num_examples: int) -> Restored:
  ev = open_evaluation(config, workdir)
  n = parallel.local_device_count()
  _, _, rng = experiment.rng_streams(ev.config.seed)
  return Restored(ev, ev.run, parallel.replicate(ev.run.params, n),
                  parallel.replicate(ev.run.model_state, n), rng,
                  ev.ds.x_test[:num_examples], ev.ds.y_test[:num_examples])
