r"""Runs one tradeoff training run on a Slurm cluster: one task per host (or per GPU).

    python -m launch.slurm --config=configs/cifar10_linf.py --workdir=/shared/runs/c10 \
        --nodes=2 --gpus_per_node=8 --partition=gpu --time=24:00:00 --dry_run

prints the sbatch script it would submit; without --dry_run it writes the script
next to the workdir and submits it with `sbatch`. Every task runs the same
`python -m tradeoff.main` command through `srun`; JAX detects the Slurm job
(SLURM_* variables) and starts its distributed runtime itself, so no
coordinator flags are needed. --tasks=per_node gives one process per host that
drives all its GPUs (the usual choice); --tasks=per_gpu gives one process per
GPU. The workdir must be on a file system every node sees. Resubmitting the same
script resumes from the last checkpoint; Slurm's SIGTERM before a time limit
(`--signal`) makes every process save first.
"""
from __future__ import annotations

import os
import subprocess

from absl import flags

from launch import commands
from tradeoff import cli
from tradeoff import errors

_CONFIG = flags.DEFINE_string('config', None, 'Experiment config file[:variant].')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory on a shared file system.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'A --config.FIELD=VALUE override '
                                       '(repeatable), e.g. --override=config.eps=0.1.')
_NODES = flags.DEFINE_integer('nodes', 1, 'Hosts.')
_GPUS = flags.DEFINE_integer('gpus_per_node', 1, 'GPUs per host.')
_TASKS = flags.DEFINE_enum('tasks', 'per_node', ['per_node', 'per_gpu'],
                           'One JAX process per host, or one per GPU.')
_CPUS = flags.DEFINE_integer('cpus_per_task', 8, 'CPU cores per task (input pipeline).')
_PARTITION = flags.DEFINE_string('partition', None, 'Slurm partition.')
_ACCOUNT = flags.DEFINE_string('account', None, 'Slurm account.')
_TIME = flags.DEFINE_string('time', '24:00:00', 'Time limit (HH:MM:SS).')
_JOB_NAME = flags.DEFINE_string('job_name', 'tradeoff', 'Slurm job name.')
_PYTHON = flags.DEFINE_string('python', 'python', 'The Python with tradeoff installed, on the '
                              'nodes.')
_SETUP = flags.DEFINE_multi_string('setup', [], 'Shell lines run before srun (modules, '
                                   'virtualenv activation, TFDS_DATA_DIR=...).')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the sbatch script; submit nothing.')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'Unexpected arguments: {argv[1:]}')
  if not _CONFIG.value or not _WORKDIR.value:
    raise errors.UserError('--config and --workdir are required.')
  script = commands.sbatch_script(
      config=_CONFIG.value, workdir=_WORKDIR.value, overrides=_OVERRIDES.value,
      nodes=_NODES.value, gpus_per_node=_GPUS.value, tasks=_TASKS.value,
      cpus_per_task=_CPUS.value, partition=_PARTITION.value, account=_ACCOUNT.value,
      time_limit=_TIME.value, job_name=_JOB_NAME.value, python=_PYTHON.value,
      setup=_SETUP.value)
  if _DRY_RUN.value:
    print(script)
    return
  os.makedirs(_WORKDIR.value, exist_ok=True)
  path = os.path.join(_WORKDIR.value, 'sbatch.sh')
  with open(path, 'w') as f:
    f.write(script)
  print(f'wrote {path}')
  subprocess.run(['sbatch', path], check=True)


if __name__ == '__main__':
  cli.run(main)
