"""Training runs behind the figure experiments: configs, training, weights, records."""
from __future__ import annotations

import copy
import gc
import os

import jax
import ml_collections
import numpy as np

from tradeoff import configlib
from tradeoff import trained
from tradeoff import train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/<name> with the progress bar and TensorBoard off."""
  c = configlib.load(os.path.join(REPO, 'configs', name))
  c.progress_bar = False
  c.tensorboard = False
  return c


def with_eps(base: ml_collections.ConfigDict, eps_train: float,
             eps_test: float | None = None) -> ml_collections.ConfigDict:
  """A copy of `base` with the training ε (and, if given, the evaluation ε) set."""
  c = copy.deepcopy(base)
  c.attack.eps = float(eps_train)
  if eps_test is not None:
    c.eval_attack.eps = float(eps_test)
  return c


def train_run(config, workdir: str) -> dict:
  """train_or_load, then drops JAX's compilation caches: each run compiles its own
  step and attack, and a process that trains dozens of runs would keep them all."""
  results = train.train_or_load(config, workdir)
  jax.clear_caches()
  gc.collect()
  return results


def linear_weights(config, workdir: str, steps=None) -> dict[int, tuple[np.ndarray, float]]:
  """{step: (w f64[D], b)} of a linear single-logit run's checkpoints."""
  del config  # the run's own model.json and checkpoints say everything
  out = {}
  for step, st in trained.load_all(workdir, steps).items():
    dense = st.params['dense']
    out[step] = (np.asarray(dense['kernel'], np.float64)[:, 0],
                 float(np.asarray(dense['bias'])[0]))
  return out


def run_record(results: dict) -> dict:
  """What a figure needs from a run's results.json, and where it came from."""
  return {k: results[k] for k in ('clean_accuracy', 'robust_accuracy', 'num_examples',
                                  'eval_attack', 'train_attack', 'train_time_s',
                                  'eval_time_s', 'commit', 'device') if k in results}
