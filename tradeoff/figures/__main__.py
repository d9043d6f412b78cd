r"""Runs the experiments behind a figure and draws it.

    python -m tradeoff.figures theory [--workdir=runs/theory] [--plot_only]
    python -m tradeoff.figures binary_mnist [--workdir=runs/binary_mnist] [--plot_only]
    python -m tradeoff.figures figure1 --results=figures/results/figure6_mnist_linf.json
    python -m tradeoff.figures figure7 --results=figures/results/figure7_mnist_linf.json
    python -m tradeoff.figures gradients|adversarial|interpolation [--datasets=mnist,fashion_mnist]
    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist]
    python -m tradeoff.figures docs [--check]
    python -m tradeoff.figures sanity --workdir=runs/mnist_linf [--sanity_examples=500]
    python -m tradeoff.figures smoothing --results=figures/results/smoothing_mnist.json
    python -m tradeoff.figures overfitting --results=figures/results/overfitting_mnist.json
    python -m tradeoff.figures reevaluate --results=figures/results/figure6_mnist_linf.json
    python -m tradeoff.figures frontier --results=figures/results/frontier_mnist_autoattack_fast.json
    python -m tradeoff.figures rst --results=figures/results/rst_mnist_autoattack_fast.json
    python -m tradeoff.figures precision --workdir=<a run trained with model.dtype=bfloat16>

Commands:
  theory   §2: Theorem 2.1 bound, Theorem 2.2 SVMs, the Gaussian variant
           (figures/theory_*.png from figures/results/theory_*.json); runs the
           experiments first unless --plot_only.
  figure1  accuracy vs training-set size, one line per ε (Figures 1 and 6), from
           a sweep's collected results (python -m launch.sweep writes them).
  figure7  accuracy vs training ε at a fixed training-set size (Figure 7).
  binary_mnist
           Figure 5: binary MNIST (5 vs 7) linear models, standard vs ℓ∞-robust
           (figures/binary_mnist.png from figures/results/binary_mnist.json);
           runs the experiment first unless --plot_only.
  gradients, adversarial, interpolation
           Figures 2, 3 and 4: input gradients, targeted large-ε adversarial
           examples and the path to them, for the standard and robust models
           named by --spec (default configs/figures/robust_models.py); writes
           figures/<command>_<dataset>.png from figures/results/<same>.json.
  reference
           the accuracy table: the spec's standard and robust models re-evaluated
           under one strong attack (PGD-100 × 5 by default) at the robust model's
           norm and ε (figures/results/reference_table.md), and under AutoAttack;
           --record_unfinished records where killed AutoAttack evaluations stand.
  sanity   evaluation sanity checks of one trained run (--workdir): robust accuracy
           over an ε grid under a white box (APGD-CE then APGD-T; --sanity_white_box)
           and Square, monotone, reaching 0, black box never ahead of white box
           (figures/sanity_<run>.png, results/sanity_<run>.json).
  smoothing
           randomized smoothing: CERTIFY and PREDICT for each Gaussian-noise base
           classifier of a collected sweep (--results), certified accuracy vs ℓ2
           radius per σ and the σ trade-off (figures/certify_<sweep>.png from
           figures/results/certify_<sweep>.json).
  overfitting
           robust overfitting (Rice et al. 2020): train / validation / test robust
           accuracy over training for each run of a collected sweep (--results) with
           a validation split, and what the kept best checkpoint recovers
           (figures/curves_<sweep>.png from figures/results/curves_<sweep>.json).
  reevaluate
           a collected sweep's robust runs evaluated again under --attack
           (autoattack_fast or autoattack) from their checkpoints, written as
           <results>_<attack>.json in the collected format, so figure1 / figure7 /
           table draw it with that attack's label.
  frontier standard vs robust accuracy of PGD-AT over ε and TRADES over β, one point
           per run of the collected file(s) (--results, comma-separated), with each
           method's Pareto front and, on the §2 distribution, Theorem 2.1's bound
           (figures/pareto_<name>.png from figures/results/pareto_<name>.json).
  rst      robust self-training against standard and adversarial training on the
           same labelled examples, from a collected rst sweep (--results)
           (figures/compare_<name>.png from figures/results/compare_<name>.json).
  precision
           one run's robust accuracy under its evaluation attack and APGD-CE with the
           model computing in float32 and in bfloat16 (--workdir; --sanity_examples
           test images): does a bf16 gradient weaken the attack?
           (figures/precision_<run>.png, results/precision_<run>.json).
  docs     rewrites the generated tables of docs/*.md from the result files they
           name (--check: fail instead if one is out of date).
  table    a markdown table of the runs in --results=a.json,b.json (e.g. the
           reference-model sweeps), also written to <figures_dir>/results/table.md;
           --where=data.train_size=60000,seed=0 keeps the runs with that grid point.
"""
from __future__ import annotations

from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoff import cli
from tradeoff import errors
from tradeoff import writers

_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Root of the training runs (default runs/<command>).')
_RESULTS_DIR = flags.DEFINE_string('results_dir', 'figures/results', 'Result JSON files.')
_FIGURES_DIR = flags.DEFINE_string('figures_dir', 'figures', 'PNG output directory.')
_PLOT_ONLY = flags.DEFINE_bool('plot_only', False, 'Only redraw from existing result files.')
_RECORD_UNFINISHED = flags.DEFINE_bool(
    'record_unfinished', False, 'reference: evaluate nothing; record in the result files where '
    'each unfinished AutoAttack evaluation stands (from its progress file) and redraw the table.')
_RESULTS = flags.DEFINE_string('results', None,
                               'Collected sweep results file(s), comma-separated for table.')
_SPEC = config_flags.DEFINE_config_file(
    'spec', None, 'Models of Figures 2-4 (default configs/figures/robust_models.py); entries '
    'can be overridden once the file is named, e.g. --spec=configs/figures/reference_models.py '
    '--spec.mnist.standard=DIR.', lock_config=False)
_WHERE = flags.DEFINE_list('where', None, 'table: only runs whose grid point has these '
                           'KEY=VALUE pairs, e.g. data.train_size=60000,seed=0.')
_DATASETS = flags.DEFINE_list('datasets', ['mnist', 'fashion_mnist'],
                              'Datasets (spec entries) for Figures 2-4.')
_DOCS_DIR = flags.DEFINE_string('docs_dir', 'docs', 'docs: the markdown files to update.')
_CHECK = flags.DEFINE_bool('check', False, 'docs: fail if a generated table is out of date.')
_ATTACK = flags.DEFINE_string('attack', 'autoattack_fast',
                              'reevaluate: autoattack_fast or autoattack.')
_SANITY_EXAMPLES = flags.DEFINE_integer('sanity_examples', 500,
                                        'sanity, precision: test images attacked.')
_SANITY_STEPS = flags.DEFINE_integer('sanity_steps', 100, 'sanity: APGD iterations.')
_SANITY_WHITE_BOX = flags.DEFINE_enum(
    'sanity_white_box', 'autoattack_fast', ['autoattack_fast', 'apgd_ce'],
    'sanity: the white-box attack (APGD-CE then APGD-T, or APGD-CE alone).')
_SANITY_QUERIES = flags.DEFINE_integer('sanity_queries', 1000, 'sanity: Square queries.')
_CERTIFY_EXAMPLES = flags.DEFINE_integer('certify_examples', 500,
                                         'smoothing: test images certified.')
_CERTIFY_N0 = flags.DEFINE_integer('certify_n0', 100, 'smoothing: CERTIFY selection samples.')
_CERTIFY_N = flags.DEFINE_integer('certify_n', 10_000,
                                  'smoothing: CERTIFY estimation samples (Cohen et al.: 100 000).')
_PREDICT_N = flags.DEFINE_integer('predict_n', 1000, 'smoothing: PREDICT samples.')
_CERTIFY_ALPHA = flags.DEFINE_float('certify_alpha', 0.001,
                                    'smoothing: failure probability α of CERTIFY and PREDICT.')


def _theory(workdir):
  from tradeoff.figures import theory  # pylint: disable=g-import-not-at-top
  return theory.run(workdir, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value)


def _binary_mnist(workdir):
  from tradeoff.figures import robust_features  # pylint: disable=g-import-not-at-top
  return robust_features.run(workdir, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value)


def _perception(command):
  def run(workdir):
    del workdir
    from tradeoff.figures import perception  # pylint: disable=g-import-not-at-top
    return perception.run(command, _SPEC.value, _DATASETS.value, _RESULTS_DIR.value,
                          _FIGURES_DIR.value, _PLOT_ONLY.value)
  return run


def _reference(workdir):
  del workdir
  from tradeoff.figures import reference  # pylint: disable=g-import-not-at-top
  return reference.run(_SPEC.value, _DATASETS.value, _RESULTS_DIR.value, _PLOT_ONLY.value,
                       record_unfinished_only=_RECORD_UNFINISHED.value)


def _results(command: str, expected: str) -> str:
  """--results, required by `command`: the error names what it expects there."""
  if not _RESULTS.value:
    raise errors.UserError(f'{command} needs --results={expected}')
  return _RESULTS.value


def _sweep_figure(command):
  def run(workdir):
    del workdir
    results = _results(command, 'figures/results/<sweep name>.json.')
    from tradeoff.figures import sweeps  # pylint: disable=g-import-not-at-top
    return sweeps.run(command, results, _FIGURES_DIR.value, _WHERE.value)
  return run


def _docs(workdir):
  del workdir
  from tradeoff.figures import docs  # pylint: disable=g-import-not-at-top
  return docs.run(_DOCS_DIR.value, _CHECK.value)


def _sanity(workdir):
  if not _WORKDIR.value:
    raise errors.UserError('sanity needs --workdir=<a trained run>.')
  from tradeoff.figures import sanity  # pylint: disable=g-import-not-at-top
  return sanity.run(workdir, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value,
                    num_examples=_SANITY_EXAMPLES.value, apgd_steps=_SANITY_STEPS.value,
                    square_queries=_SANITY_QUERIES.value,
                    white_box=_SANITY_WHITE_BOX.value)


def _precision(workdir):
  if not _WORKDIR.value:
    raise errors.UserError('precision needs --workdir=<a trained run>.')
  from tradeoff.figures import precision  # pylint: disable=g-import-not-at-top
  return precision.run(workdir, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value,
                       num_examples=_SANITY_EXAMPLES.value)


def _smoothing(workdir):
  del workdir
  results = _results('smoothing', 'figures/results/<sweep name>.json (a collected sweep of '
                     'gaussian_augment runs).')
  from tradeoff.figures import smoothing  # pylint: disable=g-import-not-at-top
  return smoothing.run(results, _RESULTS_DIR.value, _FIGURES_DIR.value,
                       _PLOT_ONLY.value, num_examples=_CERTIFY_EXAMPLES.value,
                       n0=_CERTIFY_N0.value, n=_CERTIFY_N.value, predict_n=_PREDICT_N.value,
                       alpha=_CERTIFY_ALPHA.value)


def _overfitting(workdir):
  del workdir
  results = _results('overfitting', 'figures/results/<sweep name>.json (a collected sweep '
                     'of runs with data.validation_size > 0).')
  from tradeoff.figures import overfitting  # pylint: disable=g-import-not-at-top
  return overfitting.run(results, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value)


def _reevaluate(workdir):
  del workdir
  results = _results('reevaluate', 'figures/results/<sweep name>.json.')
  from tradeoff.figures import reevaluate  # pylint: disable=g-import-not-at-top
  return reevaluate.run(results, _ATTACK.value)


def _frontier(workdir):
  del workdir
  results = _results('frontier', '<collected sweep file>[,<another>].')
  from tradeoff.figures import frontier  # pylint: disable=g-import-not-at-top
  return frontier.run(results.split(','), _RESULTS_DIR.value, _FIGURES_DIR.value,
                      _PLOT_ONLY.value)


def _rst(workdir):
  del workdir
  results = _results('rst', 'figures/results/rst_<dataset>[_autoattack_fast].json.')
  from tradeoff.figures import rst  # pylint: disable=g-import-not-at-top
  return rst.run(results, _RESULTS_DIR.value, _FIGURES_DIR.value, _PLOT_ONLY.value)


COMMANDS = {'theory': _theory, 'binary_mnist': _binary_mnist,
            'figure1': _sweep_figure('figure1'), 'figure7': _sweep_figure('figure7'),
            'table': _sweep_figure('table'), 'gradients': _perception('gradients'),
            'adversarial': _perception('adversarial'),
            'interpolation': _perception('interpolation'), 'reference': _reference,
            'docs': _docs, 'sanity': _sanity, 'smoothing': _smoothing,
            'overfitting': _overfitting, 'reevaluate': _reevaluate,
            'frontier': _frontier, 'rst': _rst, 'precision': _precision}


def main(argv):
  if len(argv) != 2 or argv[1] not in COMMANDS:
    raise errors.UserError(f'Give one command; valid choices: {", ".join(COMMANDS)}. '
                           f'Got {argv[1:]}.')
  writers.quiet_library_logs()
  logging.set_verbosity(logging.INFO)
  command = argv[1]
  for p in COMMANDS[command](_WORKDIR.value or f'runs/{command}'):
    print(p)


if __name__ == '__main__':
  cli.run(main)
