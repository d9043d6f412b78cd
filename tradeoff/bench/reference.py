r"""tradeoff's AutoAttack beside Croce & Hein's own, on one model, the same images, one host.

    python -m tradeoff.bench --mode=autoattack_reference --workdir=<run> \
        --torch_python=<python of an environment with torch and pyautoattack> \
        [--num_examples=500] [--output=figures/results/bench_autoattack_reference_<name>.json]

The optional environment is separate from tradeoff's (torch is several GB and
never part of CI), e.g. `python3 -m venv ~/torchenv && ~/torchenv/bin/pip install
torch pyautoattack`. Steps, one after the other in this process and its child:

1. export the run (`trained.export`) and write its first N test images;
2. port the export to PyTorch (`torch_reference.py`) and check the port: its
   logits on the N images against the JAX model's (largest difference, and
   whether every prediction agrees); a port that disagrees stops the benchmark;
3. tradeoff's AutoAttack standard through `evaluation.evaluate_checkpoint`
   (every stage's robust accuracy and time, which points stay robust);
4. the reference's `AutoAttack(version='standard', seed=0)` through its own
   `run_standard_evaluation`, on the same images, threads as torch chooses
   (all cores).

The result file holds both records whole, per-stage robust accuracy of both,
the points on which they disagree, both wall times and their ratio, and the host.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import jax
import ml_collections
import numpy as np

from tradeoff import configlib
from tradeoff import data
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import experiment
from tradeoff import labels
from tradeoff import trained
from tradeoff import workdir as workdir_lib

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'torch_reference.py')
# tradeoff's stage names -> the reference's
STAGE_NAMES = {'apgd_ce': 'apgd-ce', 'apgd_t9': 'apgd-t', 'fab_t9': 'fab-t', 'square': 'square'}
# A port whose logits differ from the JAX model's by more than this (relative to the
# largest logit) is not the same model.
PORT_TOLERANCE = 1e-4


def torch_python_or_error(path: str | None) -> str:
  """The interpreter of the optional torch environment, checked."""
  if not path:
    raise errors.UserError('--mode=autoattack_reference needs --torch_python=<python of an '
                           'environment with torch and pyautoattack>, e.g. python3 -m venv '
                           '~/torchenv && ~/torchenv/bin/pip install torch pyautoattack.')
  probe = subprocess.run([path, '-c', 'import torch, pyautoattack'], capture_output=True,
                         text=True, check=False)
  if probe.returncode:
    raise errors.UserError(f'--torch_python={path} cannot import torch and pyautoattack: '
                           f'{probe.stderr.strip().splitlines()[-1] if probe.stderr else "?"}')
  return path


def torch_logits(torch_python: str, export_dir: str, x: np.ndarray) -> np.ndarray:
  """The PyTorch port's logits of an export on x (f32 NHWC in [0, 1])."""
  with tempfile.TemporaryDirectory() as tmp:
    images, out = os.path.join(tmp, 'x.npz'), os.path.join(tmp, 'logits.npz')
    np.savez(images, x=x, y=np.zeros(len(x), np.int32))
    _run(torch_python, 'logits', f'--export={export_dir}', f'--images={images}',
         f'--output={out}')
    with np.load(out) as z:
      return z['logits']


def _run(torch_python: str, *args: str) -> None:
  proc = subprocess.run([torch_python, SCRIPT, *args], capture_output=True, text=True,
                        check=False)
  if proc.returncode:
    raise RuntimeError(f'{SCRIPT} {args[0]} failed (exit {proc.returncode}):\n'
                       f'{proc.stderr[-3000:]}')


def port_check(logits_jax: np.ndarray, logits_torch: np.ndarray) -> dict:
  scale = max(float(np.abs(logits_jax).max()), 1e-6)
  diff = float(np.abs(logits_jax - logits_torch).max()) if len(logits_jax) else 0.0
  agree = np.argmax(logits_jax, -1) == np.argmax(logits_torch, -1)
  return {'max_abs_logit_difference': diff, 'relative': diff / scale,
          'predictions_agree': int(agree.sum()), 'num_points': int(len(agree)),
          'ok': bool(diff / scale <= PORT_TOLERANCE and agree.all())}


def autoattack_reference(workdir: str, num_examples: int, torch_python: str,
                         batch_size: int = 250, seed: int = 0, settings=None) -> dict:
  """Both AutoAttacks on the first num_examples test images of `workdir`'s
  checkpoint, at the run's training norm and ε (`settings`: another AutoAttack
  block for tests; the reference always runs its standard version)."""
  torch_python = torch_python_or_error(torch_python)
  train = workdir_lib.read_results(workdir)
  if train is None:
    raise errors.UserError(f'{workdir} has no results.json: train the run first.')
  norm, eps = train['train_attack']['norm'], float(train['train_attack']['eps'])
  if eps <= 0:
    raise errors.UserError(f'{workdir} is a standard run (training ε = 0): pick a robust one.')
  spec = ml_collections.ConfigDict({'name': 'autoattack', 'num_examples': num_examples,
                                    'settings': settings or configlib.autoattack_config()})
  config = evaluation.autoattack_config(workdir, norm, eps, spec)
  ev = evaluation.open_evaluation(config, workdir)
  x_all, y_all = experiment.eval_split(ev.config, ev.ds)
  x = np.asarray(data.to_float(x_all[:num_examples]), np.float32)
  y = np.asarray(y_all[:num_examples], np.int32)
  with tempfile.TemporaryDirectory() as tmp:
    export_dir = trained.export(workdir, os.path.join(tmp, 'export'))
    check = port_check(np.asarray(ev.run.logits(x)), torch_logits(torch_python, export_dir, x))
    if not check['ok']:
      raise RuntimeError(f'the PyTorch port of {workdir} is not the same model: {check}')
    mine = evaluation.evaluate_checkpoint(config, workdir)
    jax.clear_caches()
    images, out = os.path.join(tmp, 'images.npz'), os.path.join(tmp, 'reference.json')
    np.savez(images, x=x, y=y)
    _run(torch_python, 'autoattack', f'--export={export_dir}', f'--images={images}',
         f'--output={out}', f'--norm={norm}', f'--eps={eps!r}',
         f'--batch_size={batch_size}', f'--seed={seed}')
    ref = workdir_lib.read_json(out)
  return compare(mine, ref, dict(workdir=workdir, norm=norm, eps=eps,
                                 num_examples=num_examples, port_check=check,
                                 train_commit=train.get('commit'),
                                 model=train.get('config', {}).get('model', {}).get('name'),
                                 num_params=train.get('num_params')))


def compare(mine: dict, ref: dict, head: dict) -> dict:
  """The two records side by side: per-stage robust accuracy and time, the
  points they disagree on, and the time ratio."""
  ref_stages = {st['attack']: st for st in ref['robust_accuracy_by_stage']}
  n = int(ref['num_examples'])
  stages = []
  for st in mine['robust_accuracy_by_stage']:
    other = ref_stages.get(STAGE_NAMES.get(st['attack'], st['attack']))
    stages.append({
        'attack': st['attack'], 'tradeoff_robust_accuracy': st['robust_accuracy'],
        'reference_robust_accuracy': other and other['robust_accuracy'],
        'difference_points': None if other is None else int(round(
            (st['robust_accuracy'] - other['robust_accuracy']) * n)),
        'tradeoff_time_s': st['wall_time_s'],
        'reference_time_s': other and other['wall_time_s'],
        'time_ratio': None if not other or not other['wall_time_s'] else
        st['wall_time_s'] / other['wall_time_s']})
  a, b = mine['robust_points'], ref['robust_points']
  if len(a) != len(b):
    raise ValueError(f'tradeoff attacked {len(a)} points, the reference {len(b)}')
  only_mine = [i for i, (p, q) in enumerate(zip(a, b)) if p == '1' and q == '0']
  only_ref = [i for i, (p, q) in enumerate(zip(a, b)) if p == '0' and q == '1']
  return {**head,
          'tradeoff_autoattack': labels.attack_label(mine['eval_attack']),
          'reference_autoattack': f"pyautoattack {ref.get('version')} AutoAttack(version="
                                  f"'standard', seed={ref['seed']}), torch {ref['torch']}, "
                                  f"{ref['threads']} threads, batch {ref['batch_size']}",
          'tradeoff_robust_accuracy': mine['robust_accuracy'],
          'reference_robust_accuracy': ref['robust_accuracy'],
          'clean_accuracy': {'tradeoff': mine['robust_subset_clean_accuracy']
                             if 'robust_subset_clean_accuracy' in mine
                             else mine['clean_accuracy'],
                             'reference': ref['clean_accuracy']},
          'stages': stages,
          'robust_only_under_tradeoff': only_mine, 'robust_only_under_reference': only_ref,
          'tradeoff_time_s': mine['robust_time_s'], 'reference_time_s': ref['time_s'],
          'time_ratio': mine['robust_time_s'] / ref['time_s'] if ref['time_s'] else None,
          'evaluations': {'tradeoff': mine, 'reference': ref}}


def format_reference(res: dict) -> str:
  head = (f"{res['workdir']}: {res['norm']} ε = {labels.fmt_eps(res['eps'])}, first "
          f"{res['num_examples']} test images\ntradeoff: {res['tradeoff_autoattack']}\n"
          f"reference: {res['reference_autoattack']}\n")
  tail = (f"\npoints robust only under tradeoff: {res['robust_only_under_tradeoff']}; only "
          f"under the reference: {res['robust_only_under_reference']}")
  return head + reference_table(res) + tail


def reference_table(res: dict) -> str:
  """Per stage: both robust accuracies, their difference in points, both times."""
  pct = lambda v: '–' if v is None else labels.pct(v, 2)
  sec = lambda v: '–' if v is None else f'{v:.0f} s'
  rows = [[s['attack'], pct(s['tradeoff_robust_accuracy']), pct(s['reference_robust_accuracy']),
           '–' if s['difference_points'] is None else f"{s['difference_points']:+d}",
           sec(s['tradeoff_time_s']), sec(s['reference_time_s']),
           '–' if s['time_ratio'] is None else f"{s['time_ratio']:.2f}"] for s in res['stages']]
  rows.append(['AutoAttack', pct(res['tradeoff_robust_accuracy']),
               pct(res['reference_robust_accuracy']),
               f"{len(res['robust_only_under_tradeoff']) - len(res['robust_only_under_reference']):+d}",
               sec(res['tradeoff_time_s']), sec(res['reference_time_s']),
               '–' if res['time_ratio'] is None else f"{res['time_ratio']:.2f}"])
  return labels.markdown(['stage', 'robust acc. tradeoff', 'robust acc. reference',
                          'points (tradeoff − reference)', 'time tradeoff', 'time reference',
                          'time ratio'], rows)
