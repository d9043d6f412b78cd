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


TPU_INSTALL = 'pip install -q -U "jax[tpu]" -e .'


def tpu_vm_commands(*, tpu: str, zone: str, config: str, workdir: str, repo: str,
                    ref: str, overrides=(), data_dir: str | None = None,
                    project: str | None = None, create: bool = False,
                    accelerator_type: str = 'v4-8', version: str = 'tpu-ubuntu2204-base',
                    install: str = TPU_INSTALL, checkout: str = '$HOME/tradeoff'
                    ) -> list[list[str]]:
  """The gcloud command lines, in order.

  Every worker runs from a checkout of `repo` at commit `ref` (`checkout`,
  cloned the first time, moved to `ref` every time), so the code and the
  configs (configs/, which the package does not install) are the launcher's own
  and the same on every worker; `config` is a path inside that checkout.
  """
  for name, value in (('tpu', tpu), ('zone', zone), ('config', config), ('workdir', workdir),
                      ('repo', repo), ('ref', ref)):
    if not value:
      raise errors.UserError(f'--{name} is required.')
  path = config.split(':', 1)[0]
  if os.path.isabs(path) or path.startswith('..'):
    raise errors.UserError(f'--config={config}: the workers run from a checkout of --repo, so '
                           f'the config must be a path inside the repository (configs/...).')
  if '://' not in workdir:
    raise errors.UserError(f'--workdir={workdir}: every worker must see the workdir; use a '
                           f'bucket (gs://...).')
  where = [f'--zone={zone}'] + ([f'--project={project}'] if project else [])
  out = []
  if create:
    out.append(['gcloud', 'compute', 'tpus', 'tpu-vm', 'create', tpu, *where,
                f'--accelerator-type={accelerator_type}', f'--version={version}'])
  setup = (f'set -e; D="{checkout}"; '
           f'if [ ! -d "$D/.git" ]; then git clone -q {shlex.quote(repo)} "$D"; fi; '
           f'cd "$D"; git fetch -q origin; git checkout -q --detach {shlex.quote(ref)}; '
           f'{install}')
  train = shlex.join(train_command('python3', config, workdir, overrides))
  env = f'TFDS_DATA_DIR={shlex.quote(data_dir)} ' if data_dir else ''
  run = f'set -e; cd "{checkout}"; {env}{train}'
  for step in (setup, run):
    out.append(['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', tpu, *where, '--worker=all',
                f'--command={step}'])
  return out
