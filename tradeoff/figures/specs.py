"""The model specs of Figures 2-4 and the accuracy table (configs/figures/*.py).

A spec names, per dataset, the workdirs of finished runs by role (standard,
robust_linf, robust_l2, independent) and the figures' settings.
"""
from __future__ import annotations

import os

import ml_collections

from tradeoff import configlib
from tradeoff.figures import runs as figure_runs

ROLES = ('standard', 'robust_linf', 'robust_l2')
DEFAULT_SPEC = 'configs/figures/robust_models.py'

_DATASET_ORDER = ('mnist', 'fashion_mnist', 'cifar10', 'restricted_imagenet')


def spec_datasets(spec) -> list[str]:
  """The datasets of a spec (its blocks with a 'standard' model), paper order first."""
  names = [k for k in spec
           if isinstance(spec[k], ml_collections.ConfigDict) and 'standard' in spec[k]]
  return sorted(names, key=lambda k: (_DATASET_ORDER + (k,)).index(k))


def spec_panel(spec, dataset: str) -> ml_collections.ConfigDict:
  """The spec's entry for one dataset (an entry is a block with a 'standard' model)."""
  panels = sorted(spec_datasets(spec))
  if dataset not in panels:
    raise ValueError(f'Dataset {dataset!r} is not in the spec; valid choices: {panels}.')
  return spec[dataset]


def load_spec(spec: ml_collections.ConfigDict | None,
              default: str = DEFAULT_SPEC) -> ml_collections.ConfigDict:
  """`spec` itself, or the default spec file when it is None."""
  return spec if spec is not None else configlib.load(os.path.join(figure_runs.REPO, default))
