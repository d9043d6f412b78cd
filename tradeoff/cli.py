"""The one way tradeoff's command line programs start: absl flags, one-line user errors.

Every entry point (`python -m tradeoff.main`, `tradeoff.evaluate`, `tradeoff.export`,
`tradeoff.figures`, `tradeoff.bench`, `launch.sweep`) defines its flags at
module level with absl, so `--help` lists them, and calls `cli.run(main)`:

- a `errors.UserError` (bad config value, missing data, unknown name) prints
  `<program>: error: <message>` on one line and exits with status 2;
- `--config=PATH[:variant]` naming a file that does not exist, or a variant
  its get_config rejects, is caught before absl loads it (absl would print a
  long, repeated message or a traceback);
- SIGTERM is turned into KeyboardInterrupt, as SIGINT already is, so a
  preempted or timed-out job runs the same clean-up as Ctrl-C; the training
  loop catches both itself, saves a checkpoint and raises
  `errors.Interrupted`, which exits with status 128 + the signal number;
- in a multi-process run, a collective that fails because another process
  stopped is reported on one line, and the process exits at once (status 3);
- any other exception is a bug and keeps its traceback.

`python -m tradeoff.bench_xla` is the one exception: it imports only jax and
numpy (argparse for its flags) so that it runs under old JAX releases.
"""
from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from absl import app
from absl import flags

from tradeoff import configlib
from tradeoff import errors

EXIT_USER_ERROR = 2


def program_name() -> str:
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  name = spec.name if spec is not None else os.path.basename(sys.argv[0])
  return name.removesuffix('.__main__')


def fail(message: str) -> None:
  """Prints a user error as one line and exits with status 2."""
  print(f'{program_name()}: error: {message}', file=sys.stderr)
  sys.exit(EXIT_USER_ERROR)


def check_config_file_flags(argv: list[str], names=('config', 'spec', 'sweep'),
                            config_file_flags=('config', 'spec')) -> None:
  """Fails with one line if a --config / --spec / --sweep file does not exist, if
  a config file's get_config rejects its ':variant' argument, or if a
  --config.x / --spec.x override is given without its file (absl would say only
  'Unknown command line flag')."""
  for name in config_file_flags:
    if name not in flags.FLAGS or flags.FLAGS[name].default is not None:
      continue   # not this program's, or a config with a default (evaluate's config.json)
    named = any(a == f'--{name}' or a.startswith(f'--{name}=') for a in argv[1:])
    override = next((a for a in argv[1:] if a.startswith(f'--{name}.')), None)
    if override and not named:
      fail(f'{override.split("=", 1)[0]} overrides a field of --{name}, which is not given: '
           f'name the file too, e.g. --{name}=<file>.py {override}.')
  for i, arg in enumerate(argv[1:], start=1):
    for name in names:
      value = None
      if arg.startswith(f'--{name}='):
        value = arg.split('=', 1)[1]
      elif arg == f'--{name}' and i + 1 < len(argv):
        value = argv[i + 1]
      if value:
        path = value.split(':', 1)[0]
        if not os.path.isfile(path):
          fail(f'--{name}={value}: file {path!r} not found.')
        if name in config_file_flags:
          try:  # absl would report get_config's errors with a traceback
            loaded = configlib.load(value)
          except errors.UserError as e:
            fail(f'--{name}={value}: {e}')
          check_override_keys(loaded, name, argv)


def _keys(config, prefix: str = '') -> list[str]:
  out = []
  for k, v in config.items():
    out.append(prefix + k)
    if hasattr(v, 'items') and not isinstance(v, (str, bytes)):
      out.extend(_keys(v, f'{prefix}{k}.'))
  return out


def check_override_keys(config, name: str, argv: list[str]) -> None:
  """Fails with one line naming an override `--<name>.KEY=...` whose KEY the
  config does not have, and the closest keys it does have (absl and
  ml_collections would print a long, repeated traceback)."""
  import difflib  # pylint: disable=g-import-not-at-top
  keys = None
  for arg in argv[1:]:
    if not arg.startswith(f'--{name}.'):
      continue
    key = arg[len(name) + 3:].split('=', 1)[0]
    keys = keys if keys is not None else _keys(config)
    if key in keys:
      continue
    parent = key.rsplit('.', 1)[0] if '.' in key else ''
    siblings = [k for k in keys if k.rsplit('.', 1)[0] == parent] if parent in keys else []
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.6)
    hint = (f'did you mean {" or ".join(repr(c) for c in close)}?' if close else
            f'valid keys under {parent!r}: {", ".join(sorted(siblings))}.' if siblings else
            f'top-level keys: {", ".join(sorted(k for k in keys if "." not in k))}.')
    fail(f'--{name}.{key}: the config has no field {key!r}; {hint}')


def _sigterm_as_interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f'signal {signum}')


EXIT_PEER_FAILED = 3


def _exit_if_a_peer_failed(e: Exception) -> None:
  """In a multi-process run, a failed collective means another process stopped
  (killed, crashed, preempted): say so on one line and exit at once, instead of
  a traceback and JAX's shutdown barrier waiting for the dead process."""
  jax = sys.modules.get('jax')
  if jax is None or not isinstance(e, jax.errors.JaxRuntimeError) or jax.process_count() < 2:
    return
  first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
  print(f'{program_name()}: error: process {jax.process_index()} of {jax.process_count()}: a '
        f'collective with the other processes failed ({first[:300]}); another process has '
        f'most likely stopped. Restart every process with the same command to resume from '
        f'the last checkpoint.', file=sys.stderr, flush=True)
  sys.stdout.flush()
  os._exit(EXIT_PEER_FAILED)  # pylint: disable=protected-access


def run(main: Callable[[list[str]], None]) -> None:
  """absl's app.run(main), with user errors as one line and SIGTERM as Ctrl-C."""
  check_config_file_flags(sys.argv)

  def wrapped(argv):
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
      return main(argv)
    except errors.UserError as e:
      fail(str(e))
    except errors.Interrupted as e:
      print(f'{program_name()}: {e}', file=sys.stderr)
      sys.exit(128 + e.signum)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM outside the training loop
      print(f'{program_name()}: interrupted ({e or "SIGINT"})', file=sys.stderr)
      sys.exit(130)
    except Exception as e:  # pylint: disable=broad-except
      _exit_if_a_peer_failed(e)
      raise

  app.run(wrapped, flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with its errors (an unknown flag, a required one
  missing, a bad value) on one line and exit status 2 instead of several lines
  and status 1."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    fail('; '.join(l.rstrip('.') for l in lines) + ' (--helpshort lists the flags).')
