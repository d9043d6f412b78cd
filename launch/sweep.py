r"""Runs a sweep: a grid of tradeoff runs, one workdir each, then collects results.

    python -m launch.sweep --sweep=configs/sweeps/figure6_mnist_linf.py [--parallel=2]
    python -m launch.sweep --sweep=... --dry_run        # list the runs and their state
    python -m launch.sweep --sweep=... --collect_only   # only write the results file
    python -m launch.sweep --sweep=... --executor=slurm --slurm_partition=gpu \
        --slurm_gpus_per_node=1 --parallel=8            # a Slurm job array (submitit)

The sweep config format is described in launch/grids.py.

Finished runs (results.json with the same config) are skipped; an interrupted
run resumes from its last checkpoint, so a killed sweep loses at most one
checkpoint interval per running job. Each run is a subprocess (its log is
<workdir>/log.txt), so one failing run does not stop the others. All runs'
results go to one file, figures/results/<name>.json by default.

--executor picks who runs the runs: `local` (default) starts subprocesses on
this machine; `slurm` submits them as one Slurm job array through submitit
(--parallel of them at a time, each resubmitted by submitit when Slurm
preempts it or its time runs out; it resumes from its checkpoint);
`submitit_local` runs the same submitit code path as local subprocesses (what
the tests use). Skipping, resuming and collecting are the same for all three.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

from absl import app
from absl import flags

from launch import grids
from launch.grids import Run, expand, load_sweep, run_config
from tradeoff import cli
from tradeoff import provenance
from tradeoff import trained
from tradeoff import workdir as workdir_lib

_SWEEP = flags.DEFINE_string('sweep', None, 'Sweep config file (configs/sweeps/*.py).')
_ROOT = flags.DEFINE_string('root', grids.DEFAULT_ROOT, 'Parent directory of the sweep workdirs.')
_PARALLEL = flags.DEFINE_integer('parallel', 1, 'Runs to train at the same time.')
_OUTPUT = flags.DEFINE_string('output', None,
                              'Collected results (default figures/results/<name>.json).')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the runs and their state only.')
_COLLECT_ONLY = flags.DEFINE_bool('collect_only', False, 'Only collect results.')
_RUN = flags.DEFINE_integer('run', None, 'Internal: train run number RUN of the sweep.')
_EXECUTOR = flags.DEFINE_enum('executor', 'local', ['local', 'slurm', 'submitit_local'],
                              'local: subprocesses here; slurm: a Slurm job array through '
                              'submitit; submitit_local: submitit\'s local executor.')
_SUBMITIT_DIR = flags.DEFINE_string('submitit_dir', None, 'submitit logs and job files '
                                    '(default <root>/<sweep name>/submitit).')
_SLURM_PARTITION = flags.DEFINE_string('slurm_partition', None, 'slurm: partition.')
_SLURM_TIME = flags.DEFINE_integer('slurm_time_min', 24 * 60, 'slurm: time limit per job, '
                                   'minutes (a run that needs longer is resubmitted).')
_SLURM_GPUS = flags.DEFINE_integer('slurm_gpus_per_node', 1, 'slurm: GPUs per job.')
_SLURM_CPUS = flags.DEFINE_integer('slurm_cpus_per_task', 8, 'slurm: CPU cores per job.')

# What the collected file keeps of each run's results.json.
RESULT_FIELDS = ('clean_accuracy', 'robust_accuracy', 'num_examples', 'num_robust_examples',
                 'robust_subset_clean_accuracy', 'clean_loss', 'adv_loss',
                 'train_attack', 'eval_attack', 'wall_time_s', 'train_time_s', 'eval_time_s',
                 'train_steps', 'num_params', 'commit', 'device', 'versions', 'data',
                 'best_checkpoint', 'last_checkpoint_validation')


def resolve_reuse(sweep, runs: list[Run], root: str) -> list[Run]:
  """Points runs that another sweep in sweep.reuse finished (same name, same
  config) at that sweep's workdir; the rest keep their own."""
  others = tuple(sweep.get('reuse', ()))
  if not others:
    return runs
  out = []
  for run in runs:
    config = run_config(sweep, run)
    if workdir_lib.finished_results(config, run.workdir) is None:
      for other in others:
        candidate = workdir_lib.join(root, other, run.name)
        if workdir_lib.finished_results(config, candidate) is not None:
          run = dataclasses.replace(run, workdir=candidate, reused_from=other)
          break
    out.append(run)
  return out


def run_state(sweep, run: Run) -> str:
  """'finished', 'partial' (checkpoints, no results) or 'new'."""
  if workdir_lib.finished_results(run_config(sweep, run), run.workdir) is not None:
    return 'finished'
  if workdir_lib.exists(workdir_lib.checkpoint_dir(run.workdir)) and trained.checkpoint_steps(
      run.workdir):
    return 'partial'
  return 'new'


def collect(sweep, runs: list[Run], sweep_path: str) -> dict:
  """Every run's results (or its absence) in one record."""
  records, total = [], 0.0
  for run in runs:
    results = workdir_lib.finished_results(run_config(sweep, run), run.workdir)
    rec = {'name': run.name, 'point': run.point, 'workdir': run.workdir,
           'status': 'finished' if results else 'missing'}
    if run.reused_from:
      rec['reused_from'] = run.reused_from
    if results:
      rec.update({k: results[k] for k in RESULT_FIELDS if k in results})
      rec['config'] = results['config']
      total += results.get('wall_time_s', 0.0)
    records.append(rec)
  return {'sweep': sweep.to_dict(), 'sweep_file': sweep_path,
          'num_runs': len(runs), 'num_finished': sum(r['status'] == 'finished' for r in records),
          'total_run_wall_time_s': total, 'collected_with_commit': provenance.git_commit(),
          'runs': records}


def _train_one(sweep, run: Run) -> None:
  from tradeoff import train  # pylint: disable=g-import-not-at-top
  from tradeoff import writers  # pylint: disable=g-import-not-at-top
  writers.quiet_library_logs()
  train.train_and_evaluate(run_config(sweep, run), run.workdir)


def log_file(run: Run) -> str:
  """<workdir>/log.txt, or for a workdir on cloud storage (no appends there) a
  local file under the system's temporary directory."""
  if workdir_lib.is_url(run.workdir):
    folder = os.path.join(tempfile.gettempdir(), 'tradeoff-sweep-logs',
                          run.workdir.split('://', 1)[1].replace('/', '_'))
  else:
    folder = run.workdir
  os.makedirs(folder, exist_ok=True)
  return os.path.join(folder, 'log.txt')


# Loaded here, not in the forked child, where loading a library could wait on a
# lock another thread of the launcher held at fork time.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith('linux') else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
  """In the child, before exec: SIGTERM when the launcher dies, even by SIGKILL
  (Linux's parent-death signal), so no trainer outlives its sweep and a
  restarted sweep never finds its runs still held. SIGTERM makes the trainer
  save a checkpoint first."""
  if _LIBC is not None:
    _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() == 1:   # the launcher died before prctl took effect
      os.kill(os.getpid(), signal.SIGTERM)


def launch(sweep_path: str, runs: list[Run], root: str, parallel: int) -> list[str]:
  """Trains the runs in subprocesses, `parallel` at a time; returns failed run names."""
  queue = list(runs)
  active: list[tuple[Run, subprocess.Popen, Any]] = []
  failed = []

  try:
    while queue or active:
      while queue and len(active) < parallel:
        run = queue.pop(0)
        log_path = log_file(run)
        log = open(log_path, 'a')
        cmd = [sys.executable, '-m', 'launch.sweep', f'--sweep={sweep_path}',
               f'--root={root}', f'--run={run.index}']
        print(f'[start] {run.name}', flush=True)
        active.append((run, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                             preexec_fn=_die_with_parent), log))
      time.sleep(0.5)
      for item in list(active):
        run, proc, log = item
        if proc.poll() is not None:
          log.close()
          active.remove(item)
          status = 'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'
          print(f'[{status}] {run.name}  (log: {log_file(run)})', flush=True)
          if proc.returncode != 0:
            failed.append(run.name)
  finally:
    for _, proc, log in active:  # interrupted: stop children; they resume next time
      proc.terminate()
      proc.wait()
      log.close()
  return failed


class TrainRun:
  """One run of a sweep as a submitit job: picklable, and resubmitted (resuming
  from the run's checkpoint) when Slurm preempts it or its time runs out."""

  def __init__(self, sweep_path: str, root: str):
    self.sweep_path, self.root = os.path.abspath(sweep_path), root

  def __call__(self, index: int) -> str:
    sweep = load_sweep(self.sweep_path)
    run = expand(sweep, self.root)[index]
    _train_one(sweep, run)
    return run.name

  def checkpoint(self, index: int):
    import submitit  # pylint: disable=g-import-not-at-top
    return submitit.helpers.DelayedSubmission(TrainRun(self.sweep_path, self.root), index)


def launch_submitit(sweep, sweep_path: str, runs: list[Run], root: str, parallel: int,
                    cluster: str, folder: str) -> list[str]:
  """Submits the runs as one job array (Slurm) or local jobs; returns failed run names."""
  import submitit  # pylint: disable=g-import-not-at-top
  executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
  params = {'name': sweep.name, 'timeout_min': _SLURM_TIME.value}
  if cluster == 'slurm':
    params.update(slurm_array_parallelism=parallel, gpus_per_node=_SLURM_GPUS.value,
                  cpus_per_task=_SLURM_CPUS.value, slurm_partition=_SLURM_PARTITION.value)
  executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
  jobs = executor.map_array(TrainRun(sweep_path, root), [r.index for r in runs])
  failed = []
  for run, job in zip(runs, jobs):
    print(f'[submitted] {run.name}  (job {job.job_id})', flush=True)
  for run, job in zip(runs, jobs):
    try:
      job.result()
      print(f'[done] {run.name}', flush=True)
    except Exception as e:  # pylint: disable=broad-except  (the run's own failure)
      print(f'[FAILED] {run.name}: {str(e).strip().splitlines()[-1] if str(e) else e} '
            f'(logs: {folder})', flush=True)
      failed.append(run.name)
  return failed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not _SWEEP.value:
    raise app.UsageError('--sweep=configs/sweeps/<name>.py is required.')
  if _PARALLEL.value < 1:
    raise app.UsageError(f'--parallel={_PARALLEL.value} must be >= 1.')
  sweep = load_sweep(_SWEEP.value)
  runs = expand(sweep, _ROOT.value)
  if _RUN.value is not None:
    if not 0 <= _RUN.value < len(runs):
      raise app.UsageError(f'--run={_RUN.value} is not in [0, {len(runs)}).')
    _train_one(sweep, runs[_RUN.value])
    return
  runs = resolve_reuse(sweep, runs, _ROOT.value)
  states = {r.name: run_state(sweep, r) for r in runs}
  counts = {s: sum(v == s for v in states.values()) for s in ('finished', 'partial', 'new')}
  print(f'{sweep.name}: {len(runs)} runs ({counts})')
  if _DRY_RUN.value:
    for r in runs:
      reused = f'  (from {r.reused_from})' if r.reused_from else ''
      print(f'  {states[r.name]:8s} {r.name}{reused}')
    return
  failed = []
  out = _OUTPUT.value or os.path.join('figures', 'results', f'{sweep.name}.json')
  last_launch = None
  todo = [] if _COLLECT_ONLY.value else [r for r in runs if states[r.name] != 'finished']
  if todo:
    t0 = time.time()
    if _EXECUTOR.value == 'local':
      failed = launch(_SWEEP.value, todo, _ROOT.value, _PARALLEL.value)
    else:
      folder = _SUBMITIT_DIR.value or os.path.join(_ROOT.value, sweep.name, 'submitit')
      failed = launch_submitit(sweep, _SWEEP.value, todo, _ROOT.value, _PARALLEL.value,
                               'slurm' if _EXECUTOR.value == 'slurm' else 'local', folder)
    # The elapsed time of the invocation that trained runs: the grid's time when
    # it trained all of them (with --parallel > 1 the runs' own wall times
    # overlap, so their sum is not that).
    last_launch = {'started_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t0)),
                   'wall_time_s': time.time() - t0, 'parallel': _PARALLEL.value,
                   'trained_runs': len(todo), 'partial_runs_resumed': counts['partial'],
                   'executor': _EXECUTOR.value,
                   'commit': provenance.git_commit(),
                   'device': provenance.device_description()}
  elif workdir_lib.exists(out):      # nothing trained now: keep the launch that trained it
    last_launch = workdir_lib.read_json(out).get('last_launch')
  record = collect(sweep, runs, _SWEEP.value)
  record['last_launch'] = last_launch
  workdir_lib.write_json(out, record, indent=1)   # atomic: every figure reads this file
  print(f'{record["num_finished"]}/{len(runs)} runs finished -> {out}')
  if failed:
    raise SystemExit(f'{len(failed)} runs failed: {failed}')


if __name__ == '__main__':
  cli.run(main)
