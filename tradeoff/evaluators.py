"""What a training run evaluates while it trains, and the best checkpoint it keeps.

Each evaluator is a named split of examples attacked by the run's evaluation
attack: `eval` (the first num_eval_examples test examples, robust accuracy on
the first num_robust_eval_examples), `train_eval` (the first
eval_train_examples training examples) and `val` (the validation split,
data.validation_size). The loop asks for them every `eval_every` steps and at
the end; it knows nothing of what they hold.

With a validation split, the checkpoint with the best validation robust
accuracy among the evaluations (every eval_every steps, and the last step) is
kept in best_checkpoint/. Evaluations are deterministic and run before the
checkpoint of their step, so a resumed run makes the same choice.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import numpy as np

from tradeoff import accuracy
from tradeoff import attacks
from tradeoff import experiment
from tradeoff import parallel
from tradeoff import workdir as workdir_lib


def scalars(prefix: str, results: dict) -> dict[str, float]:
  """The numbers of an evaluation, for metrics.jsonl and TensorBoard."""
  return {f'{prefix}/{k}': v for k, v in results.items() if isinstance(v, (int, float))}


@dataclasses.dataclass(frozen=True)
class Split:
  """Examples one evaluator attacks; robust accuracy on the first num_robust (0: all)."""
  name: str
  x: Any
  y: np.ndarray
  num_robust: int = 0


class RunEvaluators:
  """The evaluations of one training run (see the module docstring)."""

  def __init__(self, exp: experiment.Experiment, workdir: str, rng: jax.Array):
    cfg, ds = exp.config, exp.ds
    self._exp, self._workdir, self._rng = exp, workdir, rng
    self._steps = (accuracy.make_eval_step(exp.eval_module, exp.eval_attack),
                   accuracy.make_eval_step(exp.eval_module, attacks.Attack()))
    x_eval, y_eval = experiment.eval_split(cfg, ds)
    self.test_split = Split('eval', x_eval, y_eval, int(cfg.num_robust_eval_examples))
    n_train = min(cfg.eval_train_examples, len(ds.y_train))
    self.periodic_splits = [Split('train_eval', ds.x_train[:n_train], ds.y_train[:n_train])
                            ] if n_train else []
    self._best_mngr = None
    self.best = None
    if ds.y_val is not None:
      self.periodic_splits.append(Split('val', ds.x_val, ds.y_val))
      self._best_mngr = workdir_lib.best_checkpoint_manager(workdir)
      self.best = workdir_lib.best_checkpoint_meta(self._best_mngr)

  def evaluate(self, rstate, split: Split) -> dict:
    """Clean and robust accuracy of the replicated state `rstate` on `split`."""
    return accuracy.evaluate_clean_and_robust(
        self._exp.eval_module, self._exp.eval_attack, rstate.params, rstate.model_state,
        split.x, split.y, self._exp.config.data.eval_batch_size, self._rng, split.num_robust,
        self._steps)

  def test(self, rstate) -> dict:
    return self.evaluate(rstate, self.test_split)

  def periodic(self, rstate, done: int, writer, test: bool = True) -> dict:
    """The test (unless test=False), training-subset and validation evaluations at
    step `done`, logged; keeps the best validation checkpoint. Returns
    {split name: result} of the splits other than the test set."""
    logged, out = {}, {}
    if test:
      logged.update(scalars('eval', self.test(rstate)))
    for split in self.periodic_splits:
      out[split.name] = self.evaluate(rstate, split)
      logged.update(scalars(split.name, out[split.name]))
      if split.name == 'val':
        self._keep_if_best(rstate, done, out[split.name])
    if logged:
      writer.write(done, logged)
      logging.info('step %d: %s', done, ', '.join(
          f'{k}={v:.4g}' for k, v in logged.items() if k.endswith('_accuracy')))
    return out

  def _keep_if_best(self, rstate, done: int, val: dict) -> None:
    if self.best is None or val['robust_accuracy'] > self.best['validation']['robust_accuracy']:
      self.best = {'step': done, 'validation': val}
      workdir_lib.save_checkpoint(self._best_mngr, done,
                                  jax.device_get(parallel.unreplicate(rstate)), self.best)
      self._best_mngr.wait_until_finished()
      logging.info('step %d: best validation robust accuracy so far (%.4f); kept in %s',
                   done, val['robust_accuracy'], workdir_lib.best_checkpoint_dir(self._workdir))

  def selection(self, last: dict, rstate, final: dict, steps: int) -> dict:
    """With a validation split: the last step's validation result and the kept best
    checkpoint's record (its step, its validation evaluation, and its test
    evaluation under the run's evaluation attack, the last step's own when it is
    the best); {} without one."""
    if self._best_mngr is None:
      return {}
    if self.best['step'] == steps:
      test = final
    else:
      like = parallel.unreplicate(rstate)
      state, _ = workdir_lib.restore_checkpoint(self._best_mngr, self.best['step'], like)
      test = self.test(parallel.replicate(state, parallel.local_device_count()))
    return {'last_checkpoint_validation': last['val'],
            'best_checkpoint': {'step': self.best['step'],
                                'selected_by': 'validation robust accuracy',
                                'validation': self.best['validation'], 'test': test}}
