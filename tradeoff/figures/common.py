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
from tradeoff import provenance  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from tradeoff import workdir as workdir_lib  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


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


def fmt_eps(eps: float) -> str:
  """ε for labels: '4/255' for a multiple of 1/255 that has no short decimal form
  (CIFAR-10's 0.0156863), else the shortest decimal ('0.3')."""
  short = f'{eps:g}'
  k = round(eps * 255)
  if len(short) > 6 and k and abs(eps * 255 - k) < 1e-4:
    return f'{k}/255'
  return short


_CASCADES = {'autoattack': 'AutoAttack standard', 'autoattack_fast': 'AutoAttack fast',
             'pgd_shift': 'worst of'}


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


def attack_label(atk: dict) -> str:
  """An evaluation attack's record (its describe()) in a few words: 'PGD-20 × 2
  restarts', 'APGD-CE-100', 'FAB-T9-100', 'Square-5000', 'AutoAttack standard
  (APGD-CE-100, APGD-T9-100, FAB-T9-100, Square-5000)'."""
  name = atk['name']
  if 'stages' in atk:
    return (f"{_CASCADES.get(name, name)} ("
            + ', '.join(attack_label(s) for s in atk['stages']) + ')')
  steps = atk.get('num_steps', 0)
  if name.startswith('pgd'):   # PGD's records name it pgd<steps>
    return f"PGD-{steps} × {atk['restarts']} restart{'s' if atk['restarts'] != 1 else ''}"
  restarts = f" × {atk['restarts']}" if atk.get('restarts', 1) > 1 else ''
  if name.startswith('apgd_t'):
    return f"APGD-T{name[6:]}-{steps}{restarts}"
  if name.startswith('apgd_'):
    return f"APGD-{name[5:].upper()}-{steps}{restarts}"
  if name.startswith('fab_t'):
    return f"FAB-T{name[5:]}-{steps}{restarts}"
  if name == 'square':
    return f"Square-{steps}{restarts}"
  if name == 'fgsm':
    return 'FGSM'
  if name == 'feature_shift':
    return 'Theorem 2.1 shift'
  return name
