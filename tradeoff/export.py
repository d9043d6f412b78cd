r"""Exports a trained model's parameters and preprocessing for use outside tradeoff.

    python -m tradeoff.export --workdir=runs/mnist_linf [--output=DIR] [--step=N]

Writes two files that need nothing but numpy and JSON to read:

    DIR/variables.npz   every array of the model's flax variables, keyed by its
                        path: 'params/Conv_0/kernel', 'batch_stats/...', ...
    DIR/model.json      the architecture config (tradeoff.models), number of
                        classes and outputs, input shape, dtype and range
                        (pixels in [0, 1], NHWC), the normalisation mean/std
                        (applied INSIDE the model: feed it raw [0, 1] pixels),
                        class names, the checkpoint step, the training and
                        evaluation attacks and the run's accuracies

DIR defaults to <workdir>/export; both may be URLs (gs://...). Only the run's
own files are read (model.json, config.json, results.json, the checkpoint): no
data, no loss module, no teacher. In Python, `tradeoff.trained.load_export(DIR)`
returns the flax module, its variables and the record, so
`module.apply(variables, x, train=False)` gives the logits.
"""
from __future__ import annotations

from absl import flags

from tradeoff import cli
from tradeoff import errors
from tradeoff import trained
from tradeoff import writers

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run directory.')
_OUTPUT = flags.DEFINE_string('output', None, 'Output directory (default <workdir>/export).')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the newest readable).')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'Unexpected arguments: {argv[1:]}')
  writers.quiet_library_logs()
  out = trained.export(_WORKDIR.value, _OUTPUT.value, _STEP.value)
  print(f'exported {_WORKDIR.value} -> {out}/variables.npz, {out}/model.json')


if __name__ == '__main__':
  flags.mark_flags_as_required(['workdir'])
  cli.run(main)
