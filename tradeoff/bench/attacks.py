"""What AutoAttack costs against PGD-100 × 5: one trained checkpoint, the same test
images, one process on one host.

    python -m tradeoff.bench --mode=attacks --workdir=<run> [--num_examples=1000]

Both evaluations run through `evaluation.evaluate_checkpoint` at the run's
training norm and ε: PGD-100 with 5 random restarts (step 2.5·ε/100, the
accuracy table's attack) and AutoAttack standard (APGD-CE, APGD-T, FAB-T,
Square with the reference implementation's settings; each stage attacks only
the points still robust). The times are those of the attacked passes,
compilation included; the clean pass over the test set is not counted. Both
evaluation records are kept whole in the result file, so the accuracy table
can use the AutoAttack one (`reference_autoattack.records`).
"""
from __future__ import annotations

import jax
import ml_collections

from tradeoff import configlib
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import labels
from tradeoff import workdir as workdir_lib

PGD = ml_collections.ConfigDict({'num_steps': 100, 'restarts': 5, 'step_scale': 2.5})


def attack_cost(workdir: str, num_examples: int = 1000, settings=None, pgd=None) -> dict:
  """PGD-100 × 5 and AutoAttack standard on the first num_examples test images
  (other AutoAttack `settings` / PGD `pgd` blocks for tests)."""
  train = workdir_lib.read_results(workdir)
  if train is None:
    raise errors.UserError(f'{workdir} has no results.json: train the run first.')
  norm, eps = train['train_attack']['norm'], float(train['train_attack']['eps'])
  if eps <= 0:
    raise ValueError(f'{workdir} is a standard run (training ε = 0): pick a robust one, whose '
                     'points survive long enough to show what each attack costs.')
  pgd_spec = ml_collections.ConfigDict(dict((pgd or PGD).to_dict(), num_examples=num_examples))
  aa_spec = ml_collections.ConfigDict({'name': 'autoattack', 'num_examples': num_examples,
                                       'settings': settings or configlib.autoattack_config()})
  out = {}
  for key, config in (('pgd', evaluation.strong_pgd_config(workdir, norm, eps, pgd_spec)),
                      ('autoattack', evaluation.autoattack_config(workdir, norm, eps, aa_spec))):
    out[key] = dict(evaluation.evaluate_checkpoint(config, workdir),
                    train_commit=train['commit'], train_steps=train.get('train_steps'),
                    train_time_s=train.get('train_time_s'))
    jax.clear_caches()
  pgd, aa = out['pgd'], out['autoattack']
  return {'workdir': workdir, 'norm': norm, 'eps': eps, 'num_examples': num_examples,
          'model': train.get('config', {}).get('model', {}).get('name'),
          'num_params': train.get('num_params'),
          'pgd_time_s': pgd['robust_time_s'], 'autoattack_time_s': aa['robust_time_s'],
          'autoattack_over_pgd': aa['robust_time_s'] / pgd['robust_time_s'],
          'evaluations': out}


def format_attack_cost(res: dict) -> str:
  pgd = res['evaluations']['pgd']
  head = (f"{res['workdir']}: {res['norm']} ε = {labels.fmt_eps(res['eps'])}, first "
          f"{res['num_examples']} test images, clean {labels.pct(pgd['clean_accuracy'], 2)}\n")
  return head + attack_cost_table(res)


def attack_cost_table(res: dict) -> str:
  """`python -m tradeoff.bench --mode=attacks`: each attack's robust accuracy and time."""
  pgd, aa = res['evaluations']['pgd'], res['evaluations']['autoattack']
  rows = [[labels.attack_label(pgd['eval_attack']), '–', labels.pct(pgd['robust_accuracy'], 2),
           f"{pgd['robust_time_s']:.0f} s", '1.00']]
  for s in aa['robust_accuracy_by_stage']:
    rows.append([f"AutoAttack stage {s['attack']}", s['attacked_points'],
                 labels.pct(s['robust_accuracy'], 2), f"{s['wall_time_s']:.0f} s",
                 f"{s['wall_time_s'] / res['pgd_time_s']:.2f}"])
  rows.append([labels.attack_label(aa['eval_attack']), '–', labels.pct(aa['robust_accuracy'], 2),
               f"{res['autoattack_time_s']:.0f} s", f"{res['autoattack_over_pgd']:.2f}"])
  return labels.markdown(['attack', 'attacked points', 'robust acc.', 'time', '× PGD time'], rows)

