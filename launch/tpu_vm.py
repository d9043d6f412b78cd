r"""Runs one tradeoff training run on a Cloud TPU VM (one host or a multi-host slice).

    python -m launch.tpu_vm --tpu=my-v4-16 --zone=us-central2-b \
        --repo=https://github.com/<you>/tradeoff.git \
        --config=configs/cifar10_linf.py --workdir=gs://my-bucket/runs/c10 --dry_run

prints the `gcloud compute tpus tpu-vm` commands it would run; without
--dry_run it runs them. Every worker (`--worker=all`) clones --repo into
~/tradeoff once, checks out --ref (default: the commit this checkout is at, so
the workers run the launcher's own code and configs; push it first), installs
it with `jax[tpu]`, and runs the same train command from there, so
`--config=configs/...` names a file every worker has. On a multi-host slice JAX
detects the slice and starts its distributed runtime itself, and every worker
feeds its own slice of each global batch. --create also creates the TPU VM first (--accelerator_type,
--version). The workdir must be visible to every worker (a gs:// bucket, or a
shared file system); running the same command again resumes from the last
checkpoint.
"""
from __future__ import annotations

import shlex
import subprocess
import sys

from absl import flags

from launch import commands
from tradeoff import cli
from tradeoff import errors
from tradeoff import provenance

_TPU = flags.DEFINE_string('tpu', None, 'TPU VM name.')
_ZONE = flags.DEFINE_string('zone', None, 'GCP zone.')
_PROJECT = flags.DEFINE_string('project', None, 'GCP project (default: gcloud\'s).')
_CONFIG = flags.DEFINE_string('config', None, 'Experiment config file[:variant].')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory every worker sees (gs://...).')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'A --config.FIELD=VALUE override.')
_REPO = flags.DEFINE_string('repo', None, 'The git repository the workers clone: a URL '
                            '(https://...) or a path they see.')
_REF = flags.DEFINE_string('ref', None, 'The commit the workers check out (default: HEAD of '
                           'this checkout).')
_INSTALL = flags.DEFINE_string('install', commands.TPU_INSTALL, 'How each worker installs '
                               'the checkout (run inside it).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS_DATA_DIR on the workers.')
_CREATE = flags.DEFINE_bool('create', False, 'Create the TPU VM first.')
_ACCELERATOR = flags.DEFINE_string('accelerator_type', 'v4-8', '--create: accelerator type.')
_VERSION = flags.DEFINE_string('version', 'tpu-ubuntu2204-base', '--create: runtime version.')
_DRY_RUN = flags.DEFINE_bool('dry_run', False, 'Print the commands; run nothing.')


def _head() -> str:
  """This checkout's commit, for the workers to check out."""
  commit = provenance.git_commit()
  if commit == 'unknown' or ' ' in commit:
    raise errors.UserError(f'This checkout\'s commit is {commit!r}: name the commit the workers '
                           f'run with --ref.')
  if commit.endswith('-dirty'):
    print('launch.tpu_vm: warning: this checkout has uncommitted changes; the workers run '
          f'commit {commit.removesuffix("-dirty")} without them.', file=sys.stderr)
  return commit.removesuffix('-dirty')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'Unexpected arguments: {argv[1:]}')
  cmds = commands.tpu_vm_commands(
      tpu=_TPU.value, zone=_ZONE.value, config=_CONFIG.value, workdir=_WORKDIR.value,
      overrides=_OVERRIDES.value, repo=_REPO.value, data_dir=_DATA_DIR.value,
      ref=_REF.value or _head(), install=_INSTALL.value,
      project=_PROJECT.value, create=_CREATE.value, accelerator_type=_ACCELERATOR.value,
      version=_VERSION.value)
  for cmd in cmds:
    print(shlex.join(cmd))
    if not _DRY_RUN.value:
      subprocess.run(cmd, check=True)


if __name__ == '__main__':
  cli.run(main)
