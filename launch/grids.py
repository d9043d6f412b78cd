"""The sweep config format: a grid of tradeoff runs, their names and configs.

A sweep config (configs/sweeps/*.py) defines get_config() returning:

    name:      the sweep's name; runs go to <root>/<name>/<run name>
    base:      the experiment config file, e.g. 'configs/mnist_linf.py'
    overrides: ((dotted key, value), ...) applied to every run
    grid:      a list of blocks ((dotted key, (values...)), ...); each block is a
               Cartesian product, the sweep is their union (duplicates dropped)
    budget:    {'steps': S, 'min_epochs': E} or {}: each run trains
               max(S, ceil(E·n/batch)) steps, n its training-set size
               (E = 0: S steps, whatever n)
    reuse:     optional names of other sweeps under the same root: a run that
               one of them has already finished with the same config is
               collected from there instead of being trained again
    unnamed:   optional grid keys left out of run names, for values that follow
               from the named ones (e.g. a teacher's path from labelled_size)

`expand` names each run from its grid point ('eps=0.3,data.train_size=60000,seed=0');
`workdir_of` gives a run's directory from its sweep file and grid point, so
code that needs a sweep's run (the figure specs) never re-creates the format.
The builders below make the grids of the paper's figures at CPU scale.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
from typing import Any

import ml_collections

from tradeoff import configlib
from tradeoff import errors
from tradeoff import workdir as workdir_lib

DEFAULT_ROOT = 'runs/sweeps'
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Run:
  index: int
  name: str                 # e.g. 'eps=0.1,data.train_size=100,seed=0'
  point: dict[str, Any]     # the grid values of this run
  workdir: str
  reused_from: str | None = None  # the sweep whose finished run this is


def load_sweep(path: str) -> ml_collections.ConfigDict:
  sweep = configlib.load(path)
  for key in ('name', 'base', 'grid'):
    if key not in sweep:
      raise errors.UserError(f'Sweep config {path} lacks {key!r}; it needs name, base, grid '
                       f'(and optionally overrides, budget).')
  if not re.fullmatch(r'[A-Za-z0-9_.-]+', sweep.name):
    raise errors.UserError(f'Sweep name {sweep.name!r} must be a plain directory name.')
  return sweep


def _format(value) -> str:
  return f'{value:g}' if isinstance(value, float) else str(value)


def expand(sweep: ml_collections.ConfigDict, root: str) -> list[Run]:
  """The sweep's runs, in grid order, without duplicates."""
  points, seen = [], set()
  for block in sweep.grid:
    block = dict(block)
    keys = list(block)
    for values in itertools.product(*(list(block[k]) for k in keys)):
      point = dict(zip(keys, values))
      ident = tuple(sorted((k, repr(v)) for k, v in point.items()))
      if ident not in seen:
        seen.add(ident)
        points.append(point)
  runs = []
  unnamed = set(sweep.get('unnamed', ()))
  for i, point in enumerate(points):
    name = ','.join(f'{k}={_format(v)}' for k, v in point.items() if k not in unnamed)
    runs.append(Run(i, name, point, workdir_lib.join(root, sweep.name, name)))
  return runs


def _set(config: ml_collections.ConfigDict, dotted: str, value) -> None:
  *parents, leaf = dotted.split('.')
  node = config
  for p in parents:
    if p not in node:
      raise errors.UserError(f'Sweep key {dotted!r}: no field {p!r} in the config.')
    node = node[p]
  if leaf not in node:
    raise errors.UserError(f'Sweep key {dotted!r}: no field {leaf!r} in the config; valid fields '
                   f'here: {sorted(node.keys())}.')
  node[leaf] = tuple(value) if isinstance(value, list) else value


def run_config(sweep: ml_collections.ConfigDict, run: Run) -> ml_collections.ConfigDict:
  """The experiment config of one run: base, then overrides, grid point and budget."""
  config = configlib.load(sweep.base)
  for key, value in dict(sweep.get('overrides', {})).items():
    _set(config, key, value)
  for key, value in run.point.items():
    _set(config, key, value)
  budget = dict(sweep.get('budget', {}))
  if budget:
    n, min_epochs = config.data.train_size, budget.get('min_epochs', 0)
    if min_epochs and n <= 0:
      raise errors.UserError(f'Run {run.name}: a budget in epochs (min_epochs) needs '
                             f'data.train_size > 0.')
    config.num_train_steps = max(int(budget['steps']),
                                 math.ceil(min_epochs * max(n, 0) / config.data.batch_size))
  config.progress_bar = False
  return config


def workdir_of(sweep_path: str, root: str = DEFAULT_ROOT, **point) -> str:
  """The workdir of the run of `sweep_path` (relative to the repository, or
  absolute) at grid `point`; keys with dots are passed as a dict, e.g.
  workdir_of('configs/sweeps/figure6_mnist_linf.py', eps=0.3,
  **{'data.train_size': 60000, 'seed': 0})."""
  path = sweep_path if os.path.isabs(sweep_path) else os.path.join(REPO, sweep_path)
  runs = expand(load_sweep(path), root)
  for run in runs:
    if run.point == point:
      return run.workdir
  raise errors.UserError(f'{sweep_path} has no run at {point}; its runs: '
                         f'{[r.name for r in runs]}.')


def reduced_mnist_overrides() -> tuple[tuple[str, object], ...]:
  """Sweep overrides that make an MNIST-sized grid fit a 2-core CPU.

  A quarter-width Madry CNN (8/16 conv channels, 256 hidden units), PGD-7
  training (step 2.5ε/7), PGD-20 evaluation with 2 random restarts (step
  2.5ε/20) of the first 1000 test images (clean accuracy: all of them), a
  checkpoint every 500 steps.
  """
  return (('model.width', 0.25),
          ('attack.num_steps', 7), ('attack.step_scale', 2.5),
          ('eval_attack.num_steps', 20), ('eval_attack.step_scale', 2.5),
          ('eval_attack.restarts', 2),
          ('num_robust_eval_examples', 1000),
          ('checkpoint_every', 500))


def size_sweep(name: str, base: str, eps,
               large_sizes=(10000, 60000)) -> ml_collections.ConfigDict:
  """A Figure 1 / 6 sweep at the reduced scale: training ε × training-set size.

  n in `large_sizes` with one seed, n ∈ {100, 1000} with two; every run
  trains max(1200 steps, 2 epochs) of batch 128 (see docs/results.md: Sweeps).
  """
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = reduced_mnist_overrides()
  s.grid = [(('eps', tuple(eps)), ('data.train_size', tuple(large_sizes)), ('seed', (0,))),
            (('eps', tuple(eps)), ('data.train_size', (100, 1000)), ('seed', (0, 1)))]
  s.budget = {'steps': 1200, 'min_epochs': 2}
  return s


def eps_sweep(name: str, base: str, eps, seeds=(0,), reuse=(),
              extra_grid=()) -> ml_collections.ConfigDict:
  """A Figure 7 sweep at the reduced scale: training ε on the full training set.

  Same budget as size_sweep (1200 steps of batch 128, 2.6 epochs at n = 60 000),
  so the n = 60 000 runs of a size sweep listed in `reuse` are the same runs
  and are collected from there instead of trained again.
  """
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = reduced_mnist_overrides()
  s.grid = [(('eps', tuple(eps)), ('data.train_size', (60000,)), ('seed', tuple(seeds))),
            *extra_grid]
  s.budget = {'steps': 1200, 'min_epochs': 2}
  s.reuse = tuple(reuse)
  return s


def frontier_sweep(name: str, base: str, train_eps, betas, overrides=None,
                   budget=None) -> ml_collections.ConfigDict:
  """PGD adversarial training over `train_eps` and TRADES over `betas` (at the
  config's ε), every model evaluated at the config's ε: the points of a
  standard-vs-robust frontier (tradeoff.figures frontier). The reduced MNIST
  scale and budget of eps_sweep unless `overrides` / `budget` are given."""
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  if overrides is None:
    overrides = reduced_mnist_overrides() + (('data.train_size', 60000),)
  s.overrides = tuple(overrides)
  s.grid = [(('loss.name', ('pgd_at',)), ('attack.eps', tuple(train_eps))),
            (('loss.name', ('trades',)), ('loss.beta', tuple(betas)))]
  s.budget = {'steps': 1200, 'min_epochs': 2} if budget is None else dict(budget)
  return s


def rst_sweep(name: str, base: str, eps: float, labelled=(1000, 10000),
              root: str = DEFAULT_ROOT) -> ml_collections.ConfigDict:
  """Robust self-training against its baselines at the reduced MNIST scale: for
  each number n of labelled examples, standard and adversarial training on the n,
  then adversarial training on all training images, n of them labelled and the
  rest labelled by that standard model (the teacher, a run of this sweep, trained
  first in grid order). 1200 steps each, as in the size sweeps. Every run is
  evaluated at `eps` (the standard ones train at attack.eps = 0), so each method
  has a robust accuracy under the same attack."""
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = reduced_mnist_overrides()
  s.grid = [(('eps', (eps,)), ('attack.eps', (0.0,)), ('data.train_size', tuple(labelled)),
             ('seed', (0,))),
            (('eps', (eps,)), ('data.train_size', tuple(labelled)), ('seed', (0,)))]
  teachers = {r.point['data.train_size']: r.workdir for r in expand(s, root)
              if r.point.get('attack.eps') == 0.0}
  for n in labelled:
    teacher = teachers[n]
    s.grid.append((('eps', (eps,)), ('data.labelled_size', (n,)),
                   ('data.pseudo_label_from', (teacher,)), ('seed', (0,))))
  s.budget = {'steps': 1200, 'min_epochs': 0}
  s.unnamed = ('data.pseudo_label_from',)   # a function of data.labelled_size here
  return s


def reference_sweep(name: str, base: str, eps: float,
                    overrides=()) -> ml_collections.ConfigDict:
  """A standard (attack.eps = 0) and a robust (attack.eps = eps) model of `base`
  (with `overrides` applied to both), both evaluated by its evaluation attack
  at config.eps."""
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = tuple(overrides)
  s.grid = [(('attack.eps', (0.0, eps)),)]
  s.budget = {}
  return s
