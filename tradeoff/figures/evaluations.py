"""Checkpoint evaluations kept in result files, so a figure command does not repeat them.

A figure that evaluates trained runs under one attack (the accuracy table) stores
each evaluation as a row of its result file. Running the command again keeps a
row whose trained model and attack are unchanged (`same_evaluation`), uses a
run's own final evaluation when it was that attack (`own_evaluation`), and keeps
the row of a run whose workdir is not on this machine only if it used the same
attack (`absent_run_row`; checkpoints are not committed).
"""
from __future__ import annotations

import os


def same_threat_and_attack(row: dict, wd: str, norm: str, eps: float, atk_spec) -> bool:
  """Whether `row` (of an earlier result file) evaluated workdir `wd` at (norm, eps)
  under the reference attack `atk_spec`."""
  atk, steps = row['eval_attack'], int(atk_spec.num_steps)
  return (row['workdir'] == wd and row['threat_norm'] == norm and row['threat_eps'] == eps
          and (atk['num_steps'], atk['restarts'], atk['random_start']) ==
          (steps, int(atk_spec.restarts), True)
          and abs(atk['step_size'] - float(atk_spec.step_scale) * eps / steps) < 1e-9
          and row['num_robust_examples'] == min(int(atk_spec.num_examples),
                                                row['num_examples']))


def same_evaluation(row: dict, wd: str, train_results: dict, norm: str, eps: float,
                     atk_spec) -> bool:
  """Whether `row` (of an earlier result file) evaluated this trained model this way."""
  return (same_threat_and_attack(row, wd, norm, eps, atk_spec)
          and row['train_commit'] == train_results['commit']
          and row.get('train_time_s') == train_results.get('train_time_s')
          and row.get('train_steps') == train_results.get('train_steps'))


def own_evaluation(train_results: dict, wd: str, norm: str, eps: float,
                    atk_spec) -> dict | None:
  """The run's own final evaluation (its results.json), in evaluation.evaluate_checkpoint's keys, if
  it used the reference attack at (norm, eps) with clean accuracy on the whole
  test set; None otherwise (the table then evaluates the checkpoint itself)."""
  atk = train_results.get('eval_attack')
  if not atk or train_results.get('robust_accuracy') is None:
    return None
  n = train_results['num_examples']
  as_row = {'workdir': wd, 'threat_norm': atk['norm'], 'threat_eps': atk['eps'],
            'eval_attack': atk, 'num_examples': n,
            'num_robust_examples': train_results.get('num_robust_examples', n)}
  if (not same_threat_and_attack(as_row, wd, norm, eps, atk_spec)
      or n != train_results['data']['num_test']):
    return None
  return {**{k: train_results[k] for k in ('clean_accuracy', 'robust_accuracy', 'eval_attack',
                                            'num_examples')},
          'num_robust_examples': as_row['num_robust_examples'],
          'wall_time_s': train_results['eval_time_s'],
          'checkpoint_step': train_results['train_steps']}


def absent_run_row(earlier: list[dict], wd: str, role: str, norm: str, eps: float | None,
                    atk_spec) -> dict:
  """The earlier row of a run whose workdir is not on this machine.

  Its trained model cannot be checked against the row, so the row is kept only
  if it evaluated that workdir in that role under the same attack (at `eps`, or
  at the row's own ε when `eps` is None); otherwise the error names the workdir.
  """
  for r in earlier:
    if r['role'] == role and same_threat_and_attack(
        r, wd, norm, r['threat_eps'] if eps is None else eps, atk_spec):
      return r
  raise FileNotFoundError(
      f'{os.path.join(wd, "results.json")} does not exist and the result file holds no '
      f'evaluation of it as {role} at {norm} under this attack: train it first (its sweep '
      'is named in the spec file) or point the spec elsewhere.')
