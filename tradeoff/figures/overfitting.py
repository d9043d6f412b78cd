r"""Robust overfitting and early stopping (Rice, Wong & Kolter, ICML 2020).

    python -m launch.sweep --sweep=configs/sweeps/overfitting_mnist.py
    python -m tradeoff.figures overfitting --results=figures/results/overfitting_mnist.json

Every run of the collected sweep file trained with a validation split
(`data.validation_size`) and periodic evaluations (`eval_every`, with
`eval_train_examples`): its metrics.jsonl holds robust accuracy on a training
subset, the validation set and the test images over training, and its
results.json the checkpoint kept for the best validation robust accuracy beside
the last one. Writes figures/results/curves_<sweep>.json (the curves and, per
run, the test robust accuracy at its peak, at the kept checkpoint and at the
end) and figures/curves_<sweep>.png (one panel per run).
"""
from __future__ import annotations

import time

from tradeoff import errors
from tradeoff import writers
from tradeoff.figures import common

CURVES = {'train': 'train_eval/robust_accuracy', 'validation': 'val/robust_accuracy',
          'test': 'eval/robust_accuracy', 'test_clean': 'eval/clean_accuracy'}


def read_curves(workdir: str) -> dict:
  """{name: [(step, value)]} of the periodic evaluations in metrics.jsonl; a step
  logged twice (a resumed run repeats the steps after its checkpoint) keeps the
  last value."""
  per_step: dict[int, dict] = {}
  for rec in writers.read_metrics(workdir):
    per_step.setdefault(int(rec['step']), {}).update(rec)
  return {name: [(s, per_step[s][key]) for s in sorted(per_step) if key in per_step[s]]
          for name, key in CURVES.items()}


def run_record(run: dict) -> dict:
  if 'best_checkpoint' not in run:
    raise errors.UserError(f"{run['workdir']} has no best_checkpoint in its results: train it "
                           f'with data.validation_size > 0 and eval_every > 0.')
  curves = read_curves(run['workdir'])
  test = curves['test'] + [(run['train_steps'], run['robust_accuracy'])]
  test = sorted(dict(test).items())
  peak_step, peak = max(test, key=lambda sv: (sv[1], -sv[0]))
  best = run['best_checkpoint']
  steps_per_epoch = run['data']['num_train'] / run['config']['data']['batch_size']
  return {
      'name': run['name'], 'workdir': run['workdir'],
      'num_train': run['data']['num_train'],
      'num_validation': run['data']['validation']['num_examples'],
      'steps_per_epoch': steps_per_epoch, 'train_steps': run['train_steps'],
      'eval_attack': run['eval_attack'],
      'num_robust_examples': run.get('num_robust_examples'),
      'curves': {**{k: v for k, v in curves.items() if k != 'test'}, 'test': test},
      'test_robust_at_peak': peak, 'peak_step': peak_step,
      'test_robust_last': run['robust_accuracy'], 'test_clean_last': run['clean_accuracy'],
      'best_step': best['step'], 'test_robust_best': best['test']['robust_accuracy'],
      'test_clean_best': best['test']['clean_accuracy'],
      'validation_robust_best': best['validation']['robust_accuracy'],
      'fall_after_peak': peak - run['robust_accuracy'],
      'recovered_by_early_stopping': best['test']['robust_accuracy'] - run['robust_accuracy'],
      'train_commit': run['commit'], 'train_time_s': run.get('train_time_s'),
      'device': run.get('device')}


def overfitting_experiment(sweep_results: str) -> dict:
  t0 = time.time()
  sweep = common.read_json(sweep_results)
  runs = [r for r in sweep['runs'] if r.get('status') == 'finished']
  if not runs:
    raise errors.UserError(f'{sweep_results} has no finished runs; run its sweep first.')
  return {'experiment': 'overfitting', 'sweep': sweep['sweep']['name'],
          'sweep_results': sweep_results, 'runs': [run_record(r) for r in runs],
          **common.provenance_record(t0)}


def plot(res: dict, path: str) -> str:
  runs = res['runs']
  fig, axes = common.subplots(1, len(runs), figsize=(5.5 * len(runs), 4), squeeze=False,
                              layout='constrained')
  for ax, r in zip(axes[0], runs):
    for name, style in (('train', '-'), ('validation', '--'), ('test', '-')):
      pts = r['curves'][name]
      if pts:
        ax.plot([s / r['steps_per_epoch'] for s, _ in pts], [v for _, v in pts], style,
                label=f'{name} (robust)')
    ax.axvline(r['best_step'] / r['steps_per_epoch'], color='grey', ls=':', lw=1,
               label=f"kept (best validation): test {100 * r['test_robust_best']:.1f} %")
    ax.set_xlabel('epoch')
    ax.set_ylabel('robust accuracy')
    epochs = r['train_steps'] / r['steps_per_epoch']
    ax.set_title(f"n = {r['num_train']} ({r['num_validation']} held out), {epochs:.0f} epochs\n"
                 f"test robust: peak {100 * r['test_robust_at_peak']:.1f} %, last "
                 f"{100 * r['test_robust_last']:.1f} %", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
  atk = runs[0]
  fig.suptitle(f"{res['sweep']}: {common.attack_label(atk['eval_attack'])}, "
               f"ε = {common.fmt_eps(atk['eval_attack']['eps'])} ({atk['eval_attack']['norm']})",
               fontsize=10)
  return common.save_figure(fig, path)


def run(sweep_results: str, results_dir: str, figures_dir: str, plot_only: bool) -> list[str]:
  return common.experiment_and_figure(
      f'curves_{common.file_stem(sweep_results)}', results_dir, figures_dir, plot_only,
      lambda: overfitting_experiment(sweep_results), plot)
