r"""Re-evaluates a trained run's latest checkpoint under any attack.

    python -m tradeoff.evaluate --workdir=runs/mnist_linf \
        --config.eval_attack.num_steps=200 --config.eval_attack.restarts=10 \
        [--config.eval_attack.eps=0.35] [--config.eval_attack.norm=l2] [--output=PATH]

The run's own config.json is the base config, so every field, e.g.
`--config.eval_attack.loss=margin` or `--config.num_eval_examples=1000`, can be
overridden with the usual syntax. Results go to
`workdir/evaluations/<norm>_eps<ε>_<attack>.json` unless --output is given.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import ml_collections
from ml_collections import config_flags

from tradeoff import checkpoint
from tradeoff import configlib
from tradeoff import data
from tradeoff import evaluation
from tradeoff import optim
from tradeoff import provenance
from tradeoff import train
from tradeoff import writers


def _define_flags() -> None:
  """CLI flags, defined only when run as a program (the module is also a library)."""
  flags.DEFINE_string('workdir', None, 'A training run directory.')
  flags.DEFINE_string('output', None, 'Results JSON path (default: see module doc).')


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: --workdir must be a tradeoff run directory.')
  with open(path) as f:
    cfg = json.load(f)
  # JSON has no tuples; the config's tuple-valued fields come back as lists.
  for group, key in (('data', 'classes'), ('model', 'hidden'), ('model', 'keep_features'),
                     ('optim', 'decay_at')):
    if key in cfg[group]:
      cfg[group][key] = tuple(cfg[group][key])
  return configlib.restore_placeholders(ml_collections.ConfigDict(cfg))


def load_states(config: ml_collections.ConfigDict, workdir: str, steps=None):
  """The run's dataset, model and its checkpointed TrainStates.

  Args:
    config: the run's config (e.g. from load_run_config).
    workdir: the run directory.
    steps: checkpoint steps to restore; None: the latest only; 'all': every
      saved step, in order.

  Returns:
    (ds, module, eval_attack, {step: TrainState}).
  """
  ds, module, _, eval_attack, _ = train.setup(config)
  tx, _ = optim.build(config.optim, train.total_steps(config, len(ds.y_train)))
  like = train.create_state(jax.random.key(0), module, data.to_float(ds.x_train[:1]), tx)
  mngr = checkpoint.manager(workdir, config.max_checkpoints)
  if steps is None:
    steps = [mngr.latest_step()] if mngr.latest_step() is not None else []
  elif steps == 'all':
    steps = sorted(mngr.all_steps())
  if not steps:
    raise FileNotFoundError(f'No checkpoint in {workdir}/checkpoints.')
  states = {int(s): checkpoint.restore(mngr, s, like)[0] for s in steps}
  mngr.close()
  return ds, module, eval_attack, states


def evaluate_run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Restores the latest checkpoint of `workdir` and evaluates config.eval_attack."""
  t0 = time.time()
  ds, module, eval_attack, states = load_states(config, workdir)
  state = states[max(states)]
  x_eval, y_eval = train.eval_split(config, ds)
  num_devices = jax.local_device_count()
  _, _, rng = train.rng_streams(config.seed)  # as in training: same attack, same numbers
  result = evaluation.evaluate_clean_and_robust(
      module, eval_attack, train.replicate(state.params, num_devices),
      train.replicate(state.model_state, num_devices), x_eval, y_eval,
      config.data.eval_batch_size, rng, config.get('num_robust_eval_examples', 0))
  return {'workdir': os.path.abspath(workdir), 'checkpoint_step': int(state.step),
          'config': json.loads(config.to_json_best_effort()),
          'commit': provenance.git_commit(), 'device': provenance.device_description(),
          'versions': provenance.versions(), 'wall_time_s': time.time() - t0,
          'data': ds.info, 'eval_attack': eval_attack.describe(), **result}


def default_output(workdir: str, attack: dict) -> str:
  name = f"{attack['norm']}_eps{attack['eps']:g}_{attack['name']}x{attack['restarts']}"
  return os.path.join(workdir, 'evaluations', name + '.json')


def main(argv):
  del argv
  writers.quiet_library_logs()
  config, workdir = flags.FLAGS.config, flags.FLAGS.workdir
  results = evaluate_run(config, workdir)
  out = flags.FLAGS.output or default_output(workdir, results['eval_attack'])
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, 'w') as f:
    json.dump(results, f, indent=2)
  atk = results['eval_attack']
  print(f"clean accuracy {results['clean_accuracy']:.4f}, robust accuracy "
        f"{results['robust_accuracy']:.4f} under {atk['name']} x{atk['restarts']} restarts "
        f"({atk['norm']}, eps={atk['eps']:g}, step={atk['step_size']:g}) on "
        f"{results['num_examples']} examples -> {out}")


def _define_config_from_workdir(argv: list[str]) -> None:
  """--config.* overrides need the run's config as their base, so read --workdir first."""
  parser = argparse.ArgumentParser(add_help=False)
  parser.add_argument('--workdir')
  known, _ = parser.parse_known_args(argv[1:])
  if not known.workdir:
    raise SystemExit('evaluate: --workdir=DIR (a training run directory) is required.')
  config_flags.DEFINE_config_dict('config', load_run_config(known.workdir), lock_config=True)


if __name__ == '__main__':
  _define_flags()
  _define_config_from_workdir(sys.argv)
  flags.mark_flags_as_required(['workdir'])
  app.run(main)
