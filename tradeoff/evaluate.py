r"""Re-evaluates a trained run's newest checkpoint under any attack.

    python -m tradeoff.evaluate --workdir=runs/mnist_linf \
        --config.eval_attack.num_steps=200 --config.eval_attack.restarts=10 \
        [--config.eval_attack.eps=0.35] [--config.eval_attack.norm=l2] [--output=PATH]

The run's own config.json is the base config, so every field, e.g.
`--config.eval_attack.loss=margin` or `--config.num_eval_examples=1000`, can be
overridden with the usual syntax. The step follows the number of steps
(step_scale·ε/num_steps) unless `--config.eval_attack.step_size` is given.
Results go to `workdir/evaluations/<norm>_eps<ε>_<attack>.json` unless
--output is given. The library behind it is `evaluation.evaluate_checkpoint`.
"""
from __future__ import annotations

import sys

from absl import flags
import ml_collections
from ml_collections import config_flags

from tradeoff import cli
from tradeoff import errors
from tradeoff import evaluation
from tradeoff import workdir as workdir_lib
from tradeoff import writers

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run directory (holds config.json '
                               'and checkpoints/).')
_OUTPUT = flags.DEFINE_string('output', None, 'Results JSON path (default: '
                              '<workdir>/evaluations/<norm>_eps<ε>_<attack>.json).')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'Unexpected arguments: {argv[1:]}')
  writers.quiet_library_logs()
  results = evaluation.evaluate_checkpoint(flags.FLAGS.config, _WORKDIR.value)
  out = _OUTPUT.value or workdir_lib.evaluation_path(_WORKDIR.value, results['eval_attack'])
  workdir_lib.write_json(out, results)
  atk = results['eval_attack']
  stages = ''.join(f"; after {s['attack']}: {s['robust_accuracy']:.4f}"
                   for s in results.get('robust_accuracy_by_stage', []))
  print(f"clean accuracy {results['clean_accuracy']:.4f}, robust accuracy "
        f"{results['robust_accuracy']:.4f} under {atk['name']} x{atk['restarts']} restarts "
        f"({atk['norm']}, eps={atk['eps']:g}) on {results['num_robust_examples']} of "
        f"{results['num_examples']} examples{stages} -> {out}")


def _workdir_from_argv(argv: list[str]) -> str | None:
  for i, arg in enumerate(argv[1:], start=1):
    if arg.startswith('--workdir='):
      return arg.split('=', 1)[1]
    if arg == '--workdir' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def define_config_flag(argv: list[str]) -> None:
  """--config.* overrides need the run's config as their base, so --workdir is
  read before absl parses the flags. Without --workdir (e.g. for --help) the
  flag is defined on an empty config and absl reports --workdir as missing."""
  workdir = _workdir_from_argv(argv)
  base = ml_collections.ConfigDict()
  if workdir and '--help' not in argv and '--helpfull' not in argv:
    try:
      base = workdir_lib.load_config(workdir)
    except errors.UserError as e:
      cli.fail(str(e))
    cli.check_override_keys(base, 'config', argv)
  config_flags.DEFINE_config_dict(
      'config', base, 'The run\'s config.json; override fields as --config.FIELD=VALUE.',
      lock_config=True)


if __name__ == '__main__':
  define_config_flag(sys.argv)
  flags.mark_flags_as_required(['workdir'])
  cli.run(main)
