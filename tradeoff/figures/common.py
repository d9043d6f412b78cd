"""Result files and plotting shared by the figure commands."""
from __future__ import annotations

import collections
import json
import os
import time

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

from tradeoff import errors  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from tradeoff import labels  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from tradeoff import provenance  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from tradeoff import workdir as workdir_lib  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

# Shared with tradeoff.bench, which does not import the figure modules.
fmt_eps = labels.fmt_eps
attack_label = labels.attack_label


def provenance_record(t_start: float) -> dict:
  """commit, device, versions and the wall time since t_start."""
  return {'commit': provenance.git_commit(), 'device': provenance.device_description(),
          'versions': provenance.versions(), 'wall_time_s': time.time() - t_start}


def write_json(path: str, payload: dict) -> str:
  """Writes `payload` to `path` (a local path or a URL) whole or not at all."""
  workdir_lib.write_json(path, payload, indent=1)
  return path


def write_text(path: str, text: str) -> str:
  """Writes `text` to `path` whole or not at all."""
  workdir_lib.write_text(path, text)
  return path


def read_json(path: str) -> dict:
  if not workdir_lib.exists(path):
    raise FileNotFoundError(f'{path} not found: run the experiment that writes it first '
                            f'(see `python -m tradeoff.figures --help`).')
  return json.loads(workdir_lib.read_text(path))


def experiment_and_figure(stem: str, results_dir: str, figures_dir: str, plot_only: bool,
                          experiment, plot) -> list[str]:
  """<results_dir>/<stem>.json written from `experiment()` (unless plot_only: read
  back as it is), then <figures_dir>/<stem>.png drawn by `plot(result, path)`."""
  path = os.path.join(results_dir, f'{stem}.json')
  if not plot_only:
    write_json(path, experiment())
  return [path, plot(read_json(path), os.path.join(figures_dir, f'{stem}.png'))]


def file_stem(path: str) -> str:
  """'figures/results/smoothing_mnist.json' -> 'smoothing_mnist'."""
  return os.path.splitext(os.path.basename(path))[0]


def save_figure(fig, path: str) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=150, bbox_inches='tight')
  plt.close(fig)
  return path


def subplots(*args, **kwargs):
  return plt.subplots(*args, **kwargs)


def eval_attack_key(run: dict) -> tuple:
  """What makes two runs' robust accuracies comparable: attack, norm, ε, images."""
  a = run['eval_attack']
  return (a['name'], a['norm'], round(float(a['eps']), 9), run.get('num_robust_examples'))


def check_one_eval_attack(runs: list[dict], what: str) -> None:
  """Raises unless every run was evaluated under the same attack (eval_attack_key)."""
  by_key = collections.defaultdict(list)
  for r in runs:
    by_key[eval_attack_key(r)].append(r['name'])
  if len(by_key) > 1:
    raise errors.UserError(
        f'The runs were evaluated under different attacks (attack, norm, ε, images): '
        + '; '.join(f'{k}: {v}' for k, v in sorted(by_key.items(), key=str))
        + f'. {what} needs one: train them at one evaluation ε and re-evaluate them '
        f'(python -m tradeoff.figures reevaluate).')
