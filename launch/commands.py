"""The commands the launchers run, as pure functions (tests check them; the
launchers `launch.slurm` and `launch.tpu_vm` print or run them)."""
from __future__ import annotations

import os
import shlex

from tradeoff import errors


def train_command(python: str, config: str, workdir: str, overrides=()) -> list[str]:
  """The command every process runs."""
  cmd = [python, '-m', 'tradeoff.main', f'--config={config}', f'--workdir={workdir}']
  for o in overrides:
    cmd.append(o if o.startswith('--') else f'--{o}')
  return cmd


def sbatch_script(*, config: str, workdir: str, overrides=(), nodes: int = 1,
                  gpus_per_node: int = 1, tasks: str = 'per_node', cpus_per_task: int = 8,
                  partition: str | None = None, account: str | None = None,
                  time_limit: str = '24:00:00', job_name: str = 'tradeoff',
                  python: str = 'python', setup=()) -> str:
  if nodes < 1 or gpus_per_node < 0:
    raise errors.UserError(f'--nodes={nodes} must be >= 1 and --gpus_per_node={gpus_per_node} '
                           f'>= 0.')
  if tasks not in ('per_node', 'per_gpu'):
    raise errors.UserError(f'--tasks={tasks!r}: valid choices are per_node, per_gpu.')
  if tasks == 'per_gpu' and gpus_per_node < 1:
    raise errors.UserError('--tasks=per_gpu needs --gpus_per_node >= 1.')
  per_node = gpus_per_node if tasks == 'per_gpu' else 1
  lines = ['#!/bin/bash', f'#SBATCH --job-name={job_name}', f'#SBATCH --nodes={nodes}',
           f'#SBATCH --ntasks-per-node={per_node}', f'#SBATCH --cpus-per-task={cpus_per_task}',
           f'#SBATCH --time={time_limit}',
           f'#SBATCH --output={os.path.join(workdir, "slurm-%j.out")}',
           '#SBATCH --signal=TERM@120   # SIGTERM 2 min before the limit: checkpoint first']
  if gpus_per_node:
    lines.append(f'#SBATCH --gpus-per-node={gpus_per_node}')
    if tasks == 'per_gpu':
      lines.append('#SBATCH --gpus-per-task=1')
  if partition:
    lines.append(f'#SBATCH --partition={partition}')
  if account:
    lines.append(f'#SBATCH --account={account}')
  lines += ['', 'set -euo pipefail', *setup,
            f'mkdir -p {shlex.quote(workdir)}',
            '# JAX reads the SLURM_* variables and starts its distributed runtime itself.',
            'srun --kill-on-bad-exit=1 ' + shlex.join(
                train_command(python, config, workdir, overrides)), '']
  return '\n'.join(lines)


def tpu_vm_commands(*, tpu: str, zone: str, config: str, workdir: str, repo: str,
                    overrides=(), data_dir: str | None = None,
                    project: str | None = None, create: bool = False,
                    accelerator_type: str = 'v4-8', version: str = 'tpu-ubuntu2204-base'
                    ) -> list[list[str]]:
  """The gcloud command lines, in order."""
  for name, value in (('tpu', tpu), ('zone', zone), ('config', config), ('workdir', workdir),
                      ('repo', repo)):
    if not value:
      raise errors.UserError(f'--{name} is required.')
  where = [f'--zone={zone}'] + ([f'--project={project}'] if project else [])
  out = []
  if create:
    out.append(['gcloud', 'compute', 'tpus', 'tpu-vm', 'create', tpu, *where,
                f'--accelerator-type={accelerator_type}', f'--version={version}'])
  install = f'pip install -U "jax[tpu]" {shlex.quote(f"tradeoff @ {repo}")}'
  train = shlex.join(train_command('python3', config, workdir, overrides))
  env = f'TFDS_DATA_DIR={shlex.quote(data_dir)} ' if data_dir else ''
  for step in (install, env + train):
    out.append(['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', tpu, *where, '--worker=all',
                f'--command={step}'])
  return out
