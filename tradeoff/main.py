r"""Trains and evaluates one experiment.

    python -m tradeoff.main --config=configs/mnist_linf.py --workdir=runs/mnist_linf \
        [--config.eps=0.1] [--config.attack.num_steps=20] [--config.loss.name=trades]

Running the same command again resumes from the last checkpoint in --workdir.
Multi-process (one process per host or per GPU; tradeoff/distributed.py): the
same command on every process, with --coordinator_address=HOST:PORT
--num_processes=N --process_id=I where JAX cannot detect the cluster itself
(Slurm, Open MPI and Cloud TPU slices are detected).
SIGTERM / Ctrl-C save a checkpoint at the current step before the program
exits (status 128 + signal number); a bad config or missing data is reported
on one line (status 2) before anything is written.
"""
from absl import flags
from ml_collections import config_flags

from tradeoff import cli
from tradeoff import distributed
from tradeoff import errors
from tradeoff import train
from tradeoff import writers

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file, e.g. configs/mnist_linf.py[:smoke].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and results.')
flags.mark_flags_as_required(['config', 'workdir'])
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'Multi-process: HOST:PORT of '
                                   'process 0 (default $TRADEOFF_COORDINATOR_ADDRESS).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Multi-process: how many '
                                      '(default $TRADEOFF_NUM_PROCESSES).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Multi-process: this one\'s index '
                                   '(default $TRADEOFF_PROCESS_ID).')
_HEARTBEAT = flags.DEFINE_integer('heartbeat_timeout_s', 100, 'Multi-process: a process that '
                                  'stops answering for this long stops the others with an error.')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'Unexpected arguments: {argv[1:]}')
  writers.quiet_library_logs()
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                         _HEARTBEAT.value)
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  cli.run(main)
