"""A tiny ImageNet in the layout tfds's imagenet2012 builder reads, made by the tests.

ILSVRC2012_img_train.tar holds one tar per class, named by the class's WordNet
id, of JPEGs named <wnid>_<k>.JPEG; ILSVRC2012_img_val.tar holds
ILSVRC2012_val_<8 digits>.JPEG, whose labels the builder takes from its own
validation_labels.txt (in sorted file-name order). The images are random
pixels of random sizes, so crops and resizes see non-square inputs.
"""
import io
import os
import tarfile

import numpy as np

from tradeoff import imagenet

# One ImageNet class from each Restricted ImageNet range (ranges' ends
# included), and two classes outside every range.
TRAIN_CLASSES = (151, 285, 30, 37, 80, 382, 389, 121, 300, 0, 500)
PER_CLASS = 3
NUM_VAL = 40


def imagenet_names() -> list[str]:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(tfds.__file__), 'datasets', 'imagenet2012')
  with open(os.path.join(path, 'labels.txt')) as f:
    names = f.read().split()
  with open(os.path.join(path, 'validation_labels.txt')) as f:
    val = f.read().split()
  return names, val


def expected_validation_labels() -> np.ndarray:
  """ImageNet labels of the NUM_VAL validation images, in file-name order."""
  names, val = imagenet_names()
  index = {n: i for i, n in enumerate(names)}
  return np.array([index[w] for w in val[:NUM_VAL]])


def _jpeg(rng, h, w) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, 'JPEG')
  return buf.getvalue()


def _add(tar, name, payload: bytes):
  info = tarfile.TarInfo(name)
  info.size = len(payload)
  tar.addfile(info, io.BytesIO(payload))


def write_manual_dir(root: str, seed: int = 0) -> str:
  os.makedirs(root, exist_ok=True)
  names, _ = imagenet_names()
  rng = np.random.default_rng(seed)
  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_train.tar'), 'w') as outer:
    for c in TRAIN_CLASSES:
      inner_buf = io.BytesIO()
      with tarfile.open(fileobj=inner_buf, mode='w') as inner:
        for k in range(PER_CLASS):
          h, w = (int(v) for v in rng.integers(24, 96, 2))
          _add(inner, f'{names[c]}_{k}.JPEG', _jpeg(rng, h, w))
      _add(outer, f'{names[c]}.tar', inner_buf.getvalue())
  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_val.tar'), 'w') as val:
    for k in range(1, NUM_VAL + 1):
      h, w = (int(v) for v in rng.integers(24, 96, 2))
      _add(val, f'ILSVRC2012_val_{k:08d}.JPEG', _jpeg(rng, h, w))
  return root


def expected_restricted_train_counts() -> np.ndarray:
  table = imagenet.restricted_label_table()
  kept = [table[c] for c in TRAIN_CLASSES if table[c] >= 0]
  return np.bincount(kept, minlength=len(imagenet.RESTRICTED_RANGES)) * PER_CLASS
