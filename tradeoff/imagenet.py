"""ImageNet-1k and Restricted ImageNet (Tsipras et al. 2019): classes and statistics.

Restricted ImageNet keeps the ImageNet classes of nine superclasses, given as
inclusive ranges of ImageNet-1k label indices (the robustness library's
RESTRICTED_IMAGNET_RANGES, in its order), and relabels them 0–8; every other
class is dropped. Its training set comes from ImageNet's train split, its test
set from the validation split.
"""
from __future__ import annotations

import os

import numpy as np

from tradeoff import data

NUM_IMAGENET_CLASSES = 1000

# (superclass, first ImageNet label, last ImageNet label), label = position.
RESTRICTED_RANGES = (('dog', 151, 268), ('cat', 281, 285), ('frog', 30, 32),
                     ('turtle', 33, 37), ('bird', 80, 100), ('primate', 365, 382),
                     ('fish', 389, 397), ('crab', 118, 121), ('insect', 300, 319))
RESTRICTED_CLASS_NAMES = tuple(name for name, _, _ in RESTRICTED_RANGES)

# Per-channel statistics of [0, 1] pixels the robustness library normalises with.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESTRICTED_MEAN, RESTRICTED_STD = (0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575)


def restricted_label_table() -> np.ndarray:
  """i32[1000]: the Restricted ImageNet label of each ImageNet label, -1 if dropped."""
  table = np.full(NUM_IMAGENET_CLASSES, -1, np.int32)
  for label, (_, lo, hi) in enumerate(RESTRICTED_RANGES):
    table[lo:hi + 1] = label
  return table


def restricted_labels(imagenet_labels) -> np.ndarray:
  """Restricted ImageNet labels (0–8, or -1 for a dropped class) of ImageNet labels."""
  return restricted_label_table()[np.asarray(imagenet_labels)]


# ---------------------------------------------------------------------------
# Datasets: tfds `imagenet2012` streamed from its ArrayRecord files.

def _load(name: str, data_cfg) -> data.Dataset:
  """imagenet2012 (1000 classes) or restricted_imagenet (its 9 superclasses), as
  streaming.Images views: train from ImageNet's train split, test from its
  validation split."""
  from tradeoff import errors  # pylint: disable=g-import-not-at-top
  from tradeoff import streaming  # pylint: disable=g-import-not-at-top
  size, workers = int(data_cfg.image_size), int(data_cfg.workers)
  resize = int(data_cfg.eval_resize) or round(size / 0.875)
  lo, hi = (float(s) for s in data_cfg.crop_scale)
  if size <= 0 or resize < size or workers <= 0 or not 0 < lo <= hi <= 1:
    raise errors.UserError(
        f'data.image_size={size}, data.eval_resize={data_cfg.eval_resize}, data.workers='
        f'{workers}, data.crop_scale={tuple(data_cfg.crop_scale)}: need image_size > 0, '
        f'eval_resize 0 (image_size / 0.875) or >= image_size, workers > 0 and '
        f'0 < crop_scale[0] <= crop_scale[1] <= 1.')
  if data_cfg.augment != 'none':
    raise errors.UserError(
        f'data.augment={data_cfg.augment!r} with dataset {name!r}: its training images are '
        f'already random-resized crops with flips (data.crop_scale); set data.augment=none.')
  version_dir = streaming.open_prepared('imagenet2012', data.resolve_data_dir(data_cfg.data_dir))

  def split(s):
    y = streaming.labels(version_dir, s, workers)
    idx = np.arange(len(y))
    if name == 'restricted_imagenet':
      y = restricted_labels(y)
      idx, y = idx[y >= 0], y[y >= 0]
    return streaming.Images(version_dir, s, idx, size, resize, workers), y.astype(np.int32)

  (x_train, y_train), (x_test, y_test) = split('train'), split('validation')
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(version_dir)
  restricted = name == 'restricted_imagenet'
  info = {'source': f'tfds:imagenet2012:{builder.info.version}',
          'data_dir': os.path.dirname(os.path.dirname(version_dir)),
          'class_names': list(RESTRICTED_CLASS_NAMES if restricted
                              else builder.info.features['label'].names),
          'streaming': {'image_size': size, 'eval_resize': resize,
                        'train': f'random-resized crop, scale {(lo, hi)}, ratio (3/4, 4/3), '
                                 f'left-right flip',
                        'eval': f'shorter side resized to {resize}, centre crop {size}'}}
  if restricted:
    info['restricted_ranges'] = [list(r) for r in RESTRICTED_RANGES]
  mean, std = (RESTRICTED_MEAN, RESTRICTED_STD) if restricted else (IMAGENET_MEAN, IMAGENET_STD)
  return data.Dataset(name, x_train, y_train, x_test, y_test,
                      num_classes=len(RESTRICTED_RANGES) if restricted else NUM_IMAGENET_CLASSES,
                      mean=mean, std=std, bounds=(0.0, 1.0), info=info)


def _register():
  import functools  # pylint: disable=g-import-not-at-top
  for name in ('imagenet2012', 'restricted_imagenet'):
    data.DATASETS.register(name)(functools.partial(_load, name))


_register()


# ---------------------------------------------------------------------------
# A stand-in ILSVRC2012 download, for tests and the pipeline benchmark.

def synset_names() -> tuple[list[str], list[str]]:
  """(WordNet ids of the 1000 classes in label order, WordNet ids of the 50 000
  validation images in file-name order), as tfds's imagenet2012 builder reads them."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(tfds.__file__), 'datasets', 'imagenet2012')
  with open(os.path.join(path, 'labels.txt')) as f:
    names = f.read().split()
  with open(os.path.join(path, 'validation_labels.txt')) as f:
    val = f.read().split()
  return names, val


def _jpeg(rng: np.random.Generator, h: int, w: int, natural: bool, quality: int) -> bytes:
  """Random pixels, or (natural) smooth random structure with mild noise, which
  compresses like a photograph rather than like noise."""
  import io  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if natural:
    coarse = rng.integers(0, 256, (max(2, h // 24), max(2, w // 24), 3), dtype=np.uint8)
    im = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC), np.float32)
    im = np.clip(im + rng.normal(0, 6, im.shape), 0, 255).astype(np.uint8)
  else:
    im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  buf = io.BytesIO()
  Image.fromarray(im).save(buf, 'JPEG', quality=quality)
  return buf.getvalue()


def write_ilsvrc_tars(root: str, train_classes, per_class: int, num_val: int, *,
                      size_range=(24, 96), natural: bool = False, quality: int = 75,
                      seed: int = 0) -> str:
  """Writes ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar into `root` in the
  layout tfds's imagenet2012 builder reads, with generated JPEGs.

  The train tar holds one tar per class in `train_classes` (ImageNet label
  indices), named by its WordNet id, of `per_class` images <wnid>_<k>.JPEG; the
  val tar holds ILSVRC2012_val_00000001.JPEG ... <num_val>, which the builder
  labels with the first `num_val` lines of its validation_labels.txt. Heights
  and widths are drawn from `size_range`.
  """
  import io  # pylint: disable=g-import-not-at-top
  import tarfile  # pylint: disable=g-import-not-at-top
  os.makedirs(root, exist_ok=True)
  names, _ = synset_names()
  rng = np.random.default_rng(seed)

  def add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))

  def image():
    h, w = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, 2))
    return _jpeg(rng, h, w, natural, quality)

  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_train.tar'), 'w') as outer:
    for c in train_classes:
      inner_buf = io.BytesIO()
      with tarfile.open(fileobj=inner_buf, mode='w') as inner:
        for k in range(per_class):
          add(inner, f'{names[c]}_{k}.JPEG', image())
      add(outer, f'{names[c]}.tar', inner_buf.getvalue())
  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_val.tar'), 'w') as val:
    for k in range(1, num_val + 1):
      add(val, f'ILSVRC2012_val_{k:08d}.JPEG', image())
  return root
