r"""A collected sweep's robust accuracies re-measured under AutoAttack.

    python -m tradeoff.figures reevaluate --results=figures/results/figure6_mnist_linf.json \
        [--attack=autoattack_fast]
    python -m tradeoff.figures figure1 --results=figures/results/figure6_mnist_linf_autoattack_fast.json

Every finished run trained at ε > 0 is evaluated again from its checkpoint under
`attack` (AutoAttack fast, APGD-CE then APGD-T, by default; `autoattack` for the
standard version; the settings are `configlib.autoattack_config()`'s) at its own
evaluation norm and ε, on the same first test images as its own robust number.
The output is the collected file with those runs' robust accuracy and
evaluation attack replaced, the earlier evaluation kept beside them
(`previous_evaluation`) and the re-evaluation's provenance added
(`reevaluation`: commit, time, robust accuracy after each stage), so the sweep
figures draw it as they draw any collected file and label its attack. Standard
runs (ε = 0) are copied as they are. The output is rewritten after every run; a
run already re-evaluated there from the same trained model is kept.
"""
from __future__ import annotations

import logging
import os
import time

import jax

from tradeoff import configlib
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import registry
from tradeoff import workdir as workdir_lib
from tradeoff.figures import common

ATTACKS = ('autoattack_fast', 'autoattack')


def reevaluation_config(run: dict, attack: str, settings=None):
  """The run's config with its evaluation attack replaced by `attack` at the run's
  own evaluation norm, ε and number of attacked test images."""
  config = workdir_lib.load_config(run['workdir'])
  ea = config.eval_attack
  ea.norm, ea.eps = run['eval_attack']['norm'], float(run['eval_attack']['eps'])
  ea.name = attack
  ea.autoattack = settings or configlib.autoattack_config()
  config.num_robust_eval_examples = int(run.get('num_robust_examples', run['num_examples']))
  return config


def _same_trained_model(a: dict, b: dict) -> bool:
  return all(a.get(k) == b.get(k) for k in ('workdir', 'commit', 'train_steps', 'train_time_s'))


def reevaluate(collected: dict, attack: str, previous: dict | None = None, save=None,
               settings=None) -> dict:
  """`collected` with its robust runs re-evaluated under `attack`; see the module doc."""
  check_attack(attack)
  t0 = time.time()
  want = (settings or configlib.autoattack_config()).to_dict()
  earlier = [r for r in (previous or {}).get('runs', []) if 'reevaluation' in r]
  out = dict(collected, runs=[dict(r) for r in collected['runs']],
             reevaluation={'attack': attack, 'settings': want})
  for i, run in enumerate(collected['runs']):
    if run.get('status') != 'finished' or float(run['eval_attack']['eps']) <= 0:
      continue
    kept = [r for r in earlier if _same_trained_model(r, run)
            and r['reevaluation']['attack'] == attack and r['reevaluation']['settings'] == want
            and r['num_robust_examples'] == run.get('num_robust_examples')]
    if kept:
      out['runs'][i] = kept[0]
      continue
    if not workdir_lib.exists(workdir_lib.results_path(run['workdir'])):
      raise FileNotFoundError(
          f"{run['workdir']} is not on this machine and has no re-evaluation under {attack} "
          f"in the output file: run its sweep ({collected.get('sweep_file')}) first.")
    res = evaluation.evaluate_checkpoint(reevaluation_config(run, attack, settings),
                                         run['workdir'])
    jax.clear_caches()
    if res['checkpoint_step'] != run['train_steps']:
      raise errors.UserError(f"{run['workdir']}: newest checkpoint is step "
                             f"{res['checkpoint_step']}, the run trained {run['train_steps']}.")
    logging.info('%s: robust accuracy %.4f (%s) -> %.4f (%s)', run['name'],
                 run['robust_accuracy'], run['eval_attack']['name'], res['robust_accuracy'],
                 attack)
    out['runs'][i] = dict(
        run, robust_accuracy=res['robust_accuracy'], eval_attack=res['eval_attack'],
        previous_evaluation={k: run.get(k) for k in ('robust_accuracy', 'eval_attack',
                                                    'num_robust_examples')},
        reevaluation={'attack': attack, 'settings': want, 'commit': res['commit'],
                      'device': res['device'], 'host': res['host'],
                      'wall_time_s': res['wall_time_s'],
                      'robust_time_s': res['robust_time_s'],
                      'robust_accuracy_by_stage': res['robust_accuracy_by_stage'],
                      'checkpoint_step': res['checkpoint_step'],
                      **({'resumed': res['resumed']} if 'resumed' in res else {})})
    if save:
      save(dict(out, **common.provenance_record(t0)))
  return dict(out, **common.provenance_record(t0))


def check_attack(attack: str) -> None:
  registry.check_choice('re-evaluation attack', attack, ATTACKS)


def output_path(results: str, attack: str) -> str:
  stem, ext = os.path.splitext(results)
  return f'{stem}_{attack}{ext}'


def run(results: str, attack: str) -> list[str]:
  check_attack(attack)
  path = output_path(results, attack)
  previous = common.read_json(path) if os.path.exists(path) else None
  common.write_json(path, reevaluate(common.read_json(results), attack, previous,
                                     save=lambda rec: common.write_json(path, rec)))
  return [path]
