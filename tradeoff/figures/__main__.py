r"""Runs the experiments behind a figure and draws it.

    python -m tradeoff.figures theory [--workdir=runs/theory] [--plot_only]

Commands:
  theory   §2: Theorem 2.1 bound, Theorem 2.2 SVMs, the Gaussian variant
           (figures/theory_*.png from figures/results/theory_*.json).

--plot_only redraws from the result files without running anything.
"""
from __future__ import annotations

from absl import app
from absl import flags
from absl import logging

from tradeoff import writers

COMMANDS = ('theory',)

_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Root of the training runs (default runs/<command>).')
_RESULTS_DIR = flags.DEFINE_string('results_dir', 'figures/results', 'Result JSON files.')
_FIGURES_DIR = flags.DEFINE_string('figures_dir', 'figures', 'PNG output directory.')
_PLOT_ONLY = flags.DEFINE_bool('plot_only', False, 'Only redraw from existing result files.')


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'Give one command; valid choices: {", ".join(COMMANDS)}. '
                         f'Got {argv[1:]}.')
  writers.quiet_library_logs()
  logging.set_verbosity(logging.INFO)
  command = argv[1]
  workdir = _WORKDIR.value or f'runs/{command}'
  if command == 'theory':
    from tradeoff.figures import theory  # pylint: disable=g-import-not-at-top
    paths = theory.run(workdir, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value)
  for p in paths:
    print(p)


if __name__ == '__main__':
  app.run(main)
