"""Where metrics go: metrics.jsonl, TensorBoard event files, a progress bar."""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import sys
import time

from etils import epath
import tqdm

from tradeoff import workdir as workdir_lib


class MetricWriter:
  """Appends one JSON line per log step and mirrors scalars to TensorBoard.

  metrics.jsonl is the record figures are drawn from; a resumed run appends to
  it, and `read_metrics` keeps the last line written for each step. On a local
  disk each record is one appended line; cloud storage has no append, so there
  the whole file is uploaded again at each write (one line per log step keeps
  it small).
  """

  def __init__(self, workdir: str, tensorboard: bool = True, enabled: bool = True):
    """enabled=False: writes nothing (every process but the first of a multi-process run)."""
    self.path = workdir_lib.metrics_path(workdir)
    self.enabled = enabled
    self._remote = workdir_lib.is_url(self.path)
    self._lines = b''
    if self._remote and enabled and workdir_lib.exists(self.path):
      self._lines = workdir_lib.read_bytes(self.path)
      if self._lines and not self._lines.endswith(b'\n'):
        self._lines += b'\n'
    self._tb = None
    if tensorboard and enabled:
      self._tb = ScalarEventFile(workdir_lib.tensorboard_dir(workdir))

  def write(self, step: int, scalars: dict[str, float]) -> None:
    if not self.enabled:
      return
    record = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
    line = (json.dumps(record) + '\n').encode()
    if self._remote:
      self._lines += line
      workdir_lib.write_bytes(self.path, self._lines)
    else:
      with open(self.path, 'ab') as f:
        if f.tell() and not _ends_with_newline(self.path):
          f.write(b'\n')   # a line torn by a kill stays on its own, unread
        f.write(line)
    if self._tb is not None:
      for k, v in scalars.items():
        if math.isfinite(float(v)):
          self._tb.scalar(k, float(v), step)
      self._tb.flush()

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


class ScalarEventFile:
  """A TensorBoard event file of scalars, written with TensorBoard's own record
  framing and protos: TensorFlow (seconds to import) is not needed to write it."""

  def __init__(self, logdir: str):
    # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.summary.writer import record_writer
    # pylint: enable=g-import-not-at-top
    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    workdir_lib.makedirs(logdir)
    name = (f'events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.'
            f'{os.getpid()}.tradeoff')
    # On cloud storage the object is uploaded when the file is closed (end of the run).
    self._records = record_writer.RecordWriter(
        epath.Path(workdir_lib.join(logdir, name)).open('wb'))
    self._write(self._event(wall_time=time.time(), file_version='brain.Event:2'))

  def _write(self, event) -> None:
    self._records.write(event.SerializeToString())

  def scalar(self, tag: str, value: float, step: int) -> None:
    value = self._summary.Value(tag=tag, simple_value=float(value))
    self._write(self._event(wall_time=time.time(), step=int(step),
                            summary=self._summary(value=[value])))

  def flush(self) -> None:
    self._records.flush()

  def close(self) -> None:
    self._records.close()


def _ends_with_newline(path: str) -> bool:
  with open(path, 'rb') as f:
    f.seek(-1, os.SEEK_END)
    return f.read(1) == b'\n'


def read_metrics(workdir: str) -> list[dict]:
  """The records of metrics.jsonl, one per (step, set of keys), last write wins.

  A line that is not a whole JSON record (a write torn by a kill) is skipped
  with a warning naming it.
  """
  path = workdir_lib.metrics_path(workdir)
  latest = {}
  for n, line in enumerate(workdir_lib.read_text(path).splitlines(), start=1):
    if not line.strip():
      continue
    try:
      rec = json.loads(line)
      key = (rec['step'], tuple(sorted(rec)))
    except (json.JSONDecodeError, KeyError, TypeError):
      logging.warning('%s line %d is not a whole record (a torn write?); skipped: %.80r',
                      path, n, line)
      continue
    latest[key] = rec
  return sorted(latest.values(), key=lambda r: r['step'])


class Progress:
  """tqdm bar with ETA; the postfix shows the latest loss and accuracy."""

  def __init__(self, total: int, initial: int, desc: str = 'train'):
    self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc, unit='step',
                          dynamic_ncols=True, file=sys.stderr,
                          mininterval=1.0 if sys.stderr.isatty() else 30.0)

  def update(self, n: int = 1) -> None:
    self._bar.update(n)

  def show(self, scalars: dict[str, float]) -> None:
    shown = {k.split('/')[-1]: f'{v:.4g}' for k, v in scalars.items()
             if k.endswith(('loss', 'accuracy'))}
    self._bar.set_postfix(shown, refresh=False)

  def close(self) -> None:
    self._bar.close()


def quiet_library_logs() -> None:
  """Keeps absl INFO logs for tradeoff, drops the per-save chatter of orbax."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= logging.WARNING or 'orbax' not in record.pathname)
