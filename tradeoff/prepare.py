r"""Prepares a tfds dataset in the format its tradeoff loader reads.

    python -m tradeoff.prepare imagenet2012 --data_dir=/data/tfds \
        --manual_dir=/data/imagenet_tars   # holds ILSVRC2012_img_train.tar, _val.tar
    python -m tradeoff.prepare mnist --data_dir=/data/tfds

It runs tfds's own builder (`tfds.builder(name).download_and_prepare`).
Streaming datasets (imagenet2012; restricted_imagenet is read from it) are
written as ArrayRecord files, whose random access lets the training batch of
step s be a pure function of (seed, s); the in-memory datasets keep tfds's
default format. Preparing uses TensorFlow (tfds's builders do); training on
the prepared ArrayRecord files does not.
"""
from __future__ import annotations

import os
import time

from absl import flags

from tradeoff import cli
from tradeoff import errors

STREAMING = {'imagenet2012': 'imagenet2012', 'restricted_imagenet': 'imagenet2012'}
IN_MEMORY = ('mnist', 'fashion_mnist', 'cifar10')

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'tfds data dir to prepare into '
                                '(default: $TFDS_DATA_DIR, then ~/tensorflow_datasets).')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Directory with manually downloaded '
                                  'archives (imagenet2012: ILSVRC2012_img_train.tar and '
                                  'ILSVRC2012_img_val.tar).')


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None) -> str:
  """Prepares `name` and returns the version directory it was written to."""
  if name not in STREAMING and name not in IN_MEMORY:
    raise errors.UserError(f'Cannot prepare {name!r}: valid choices are '
                           f'{sorted(set(STREAMING) | set(IN_MEMORY))}.')
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tradeoff import data  # pylint: disable=g-import-not-at-top
  tfds_name = STREAMING.get(name, name)
  kwargs = {'file_format': 'array_record'} if name in STREAMING else {}
  builder = tfds.builder(tfds_name, data_dir=data.resolve_data_dir(data_dir or ''), **kwargs)
  config = tfds.download.DownloadConfig(manual_dir=os.path.expanduser(manual_dir)
                                        if manual_dir else None)
  builder.download_and_prepare(download_config=config)
  return builder.data_dir


def main(argv):
  if len(argv) != 2:
    raise errors.UserError(f'Usage: python -m tradeoff.prepare NAME [--data_dir=DIR] '
                           f'[--manual_dir=DIR]; NAME is one of '
                           f'{sorted(set(STREAMING) | set(IN_MEMORY))}.')
  t0 = time.time()
  where = prepare(argv[1], _DATA_DIR.value, _MANUAL_DIR.value)
  print(f'{argv[1]} prepared in {where} ({time.time() - t0:.0f} s)')


if __name__ == '__main__':
  cli.run(main)
