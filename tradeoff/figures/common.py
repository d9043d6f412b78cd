"""Result files and plotting shared by the figure commands."""
from __future__ import annotations

import json
import os
import time

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

from tradeoff import provenance  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


def provenance_record(t_start: float) -> dict:
  """commit, device, versions and the wall time since t_start."""
  return {'commit': provenance.git_commit(), 'device': provenance.device_description(),
          'versions': provenance.versions(), 'wall_time_s': time.time() - t_start}


def write_json(path: str, payload: dict) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(payload, f, indent=1)
  return path


def read_json(path: str) -> dict:
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: run the experiment that writes it first '
                            f'(see `python -m tradeoff.figures --help`).')
  with open(path) as f:
    return json.load(f)


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
