"""Datasets too large for host memory: images decoded on demand from tfds ArrayRecord files.

The in-memory path (data.Dataset of numpy arrays) holds MNIST and CIFAR-10 whole.
ImageNet does not fit, so here the same Dataset holds `Images`: an array-like
view of records in a prepared tfds dataset that decodes only the examples it
is indexed with. Everything that slices, subsets or relabels x_train / x_test
(class selection, validation split, train_size, evaluation in batches) works
on it unchanged, and np.asarray(view) decodes the view (in parallel threads).

Why these choices:
  * tfds's ArrayRecord files give random access (`as_data_source`), so the
    training batch of step s stays a pure function of (seed, s) exactly as in
    data.TrainStream: a killed run resumes on the batches the uninterrupted run
    would have drawn, with no iterator state to checkpoint, and each JAX
    process reads only its slice of every global batch.
  * Reading needs no TensorFlow: the data source parses records with numpy and
    the image is left encoded (tfds.decode.SkipDecoding) and decoded here with
    Pillow. Preparing imagenet2012 still uses TensorFlow, once, anywhere.
  * grain (MapDataset -> to_iter_dataset) runs the per-example decode and
    augmentation on a thread pool with a bounded prefetch buffer; Pillow
    releases the GIL while it decodes and resizes, so threads scale across
    cores without worker processes. Host memory is the buffer plus one label
    per example, whatever the dataset's size.
  * JPEGs are decoded at reduced size when the output allows it (Pillow's
    draft mode, the DCT scaling of libjpeg), never below the resolution the
    crop needs.

Training examples get a random-resized crop (scale `crop_scale`, aspect ratio
3/4 to 4/3, torchvision's sampling) and a random horizontal flip; evaluation
examples are resized so their shorter side is `resize` and centre-cropped to
`size` (224 and 256 by default, the usual ImageNet protocol). The augmentation
of the example at global stream position g draws from rng(seed, g), so it too
is a pure function of the step and independent of how many processes share
the batch.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import io
import logging
import math
import os
import threading

import numpy as np

from tradeoff import data
from tradeoff import errors

AUGMENT_SALT = 0xA06
RATIO = (3 / 4, 4 / 3)


# ---------------------------------------------------------------------------
# Records.

def open_prepared(name: str, data_dir: str | None):
  """The version directory of a prepared tfds dataset, read without TensorFlow.

  Raises:
    errors.DataNotFoundError: not prepared, or prepared in a format without
      random access.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  root = data_dir or os.path.expanduser('~/tensorflow_datasets')
  base = os.path.join(root, name)
  versions = sorted((v for v in (os.listdir(base) if os.path.isdir(base) else ())
                     if os.path.isfile(os.path.join(base, v, 'dataset_info.json'))),
                    key=lambda v: tuple(int(p) for p in v.split('.') if p.isdigit()))
  if not versions:
    raise errors.DataNotFoundError(
        f'tfds dataset {name!r} is not prepared in {root}. {how_to_prepare(name)}')
  version_dir = os.path.join(base, versions[-1])
  builder = tfds.builder_from_directory(version_dir)
  fmt = str(getattr(builder.info.file_format, 'value', builder.info.file_format))
  if fmt != 'array_record':
    raise errors.DataNotFoundError(
        f'{name!r} in {version_dir} is prepared as {fmt!r}; streaming needs random access, '
        f'which tfds gives for file_format \'array_record\'. Convert it once with '
        f'`tfds convert_format --dataset_version_dir={version_dir} '
        f'--out_file_format=array_record`, or prepare it again with '
        f'{how_to_prepare(name)}')
  return version_dir


def how_to_prepare(name: str) -> str:
  manual = (' with ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in MANUAL_DIR'
            if name.startswith('imagenet') else '')
  return (f'Prepare it once{manual}: `python -m tradeoff.prepare {name} --data_dir=DIR'
          f'{" --manual_dir=MANUAL_DIR" if manual else ""}` (tfds\'s builder, ArrayRecord '
          f'files), then point --config.data.data_dir or $TFDS_DATA_DIR at DIR.')


@functools.lru_cache(maxsize=8)
def data_source(version_dir: str, split: str):
  """Random-access records {'image': JPEG bytes, 'label': int, ...} of one split."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(version_dir)
  if split not in builder.info.splits:
    raise errors.DataNotFoundError(
        f'split {split!r} of {version_dir} is not prepared; prepared splits: '
        f'{sorted(builder.info.splits)}.')
  return builder.as_data_source(split=split, decoders={'image': tfds.decode.SkipDecoding()})


def _cache_path(version_dir: str, split: str, what: str) -> str:
  """Where per-record metadata of a split is cached: $TRADEOFF_ARRAY_CACHE or
  ~/.cache/tradeoff, keyed by the split's files (data.prepared_files_key), so a
  re-prepared dataset is scanned again rather than read stale."""
  root = os.path.expanduser(os.environ.get(data.ARRAY_CACHE_ENV, '') or '~/.cache/tradeoff')
  return os.path.join(root, f'{data.prepared_files_key(version_dir, split)}.{what}.npy')


def labels(version_dir: str, split: str, workers: int = 16) -> np.ndarray:
  """i32[num records] labels of a split, read once (a pass over the records,
  in parallel) and cached."""
  path = _cache_path(version_dir, split, 'labels')
  if os.path.exists(path):
    return np.load(path)
  src = data_source(version_dir, split)
  n = len(src)
  chunk = 1024
  logging.info('Reading the labels of %d %s records of %s (once; cached in %s)', n, split,
               version_dir, path)

  def read(start):
    return [int(r['label']) for r in src.__getitems__(range(start, min(n, start + chunk)))]

  with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
    out = np.array([lab for part in pool.map(read, range(0, n, chunk)) for lab in part],
                   np.int32)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npy'
  np.save(tmp, out)
  os.replace(tmp, path)
  return out


# ---------------------------------------------------------------------------
# Decoding and augmentation (numpy + Pillow, one example at a time).

def _open(jpeg: bytes):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return Image.open(io.BytesIO(jpeg))


def _to_array(im) -> np.ndarray:
  return np.asarray(im.convert('RGB'), np.uint8)


def decode_center(jpeg: bytes, size: int, resize: int) -> np.ndarray:
  """u8[size, size, 3]: shorter side resized to `resize`, then the centre crop."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  im = _open(jpeg)
  w, h = im.size
  scale = resize / min(w, h)
  im.draft('RGB', (math.ceil(w * scale), math.ceil(h * scale)))
  im = im.convert('RGB')
  w, h = im.size
  scale = resize / min(w, h)
  nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
  im = im.resize((nw, nh), Image.BILINEAR)
  left, top = (nw - size) // 2, (nh - size) // 2
  return _to_array(im.crop((left, top, left + size, top + size)))


def random_resized_box(rng: np.random.Generator, w: int, h: int,
                       scale: tuple[float, float]) -> tuple[int, int, int, int]:
  """(left, top, width, height) of a random crop covering a `scale` fraction of the
  area with aspect ratio in RATIO (torchvision's RandomResizedCrop sampling: ten
  tries, then the centre crop of the whole image clipped to RATIO)."""
  area = w * h
  log_ratio = (math.log(RATIO[0]), math.log(RATIO[1]))
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
    if 0 < cw <= w and 0 < ch <= h:
      return int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1)), cw, ch
  if w / h < RATIO[0]:
    cw, ch = w, round(w / RATIO[0])
  elif w / h > RATIO[1]:
    cw, ch = round(h * RATIO[1]), h
  else:
    cw, ch = w, h
  return (w - cw) // 2, (h - ch) // 2, cw, ch


def decode_random_crop(jpeg: bytes, rng: np.random.Generator, size: int,
                       scale: tuple[float, float]) -> np.ndarray:
  """u8[size, size, 3]: a random-resized crop, flipped left-right with probability 1/2."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  im = _open(jpeg)
  w, h = im.size
  left, top, cw, ch = random_resized_box(rng, w, h, scale)
  flip = rng.random() < 0.5
  # Decode at the smallest DCT scale that keeps the crop at least `size` pixels wide.
  im.draft('RGB', (math.ceil(w * size / cw), math.ceil(h * size / ch)))
  im = im.convert('RGB')
  sx, sy = im.size[0] / w, im.size[1] / h
  im = im.resize((size, size), Image.BILINEAR,
                 box=(left * sx, top * sy, (left + cw) * sx, (top + ch) * sy))
  if flip:
    im = im.transpose(Image.FLIP_LEFT_RIGHT)
  return _to_array(im)


# ---------------------------------------------------------------------------
# The array-like view.

@dataclasses.dataclass(frozen=True)
class Images:
  """u8[n, size, size, 3] images of records `indices` of a split, decoded on demand.

  Indexing (slices, integer or boolean arrays) returns another view; an integer
  index, np.asarray(view) or view.decode() decodes (centre crops, in parallel).
  """
  version_dir: str
  split: str
  indices: np.ndarray
  size: int = 224
  resize: int = 256
  workers: int = 16

  @property
  def shape(self) -> tuple[int, ...]:
    return (len(self.indices), self.size, self.size, 3)

  @property
  def dtype(self) -> np.dtype:
    return np.dtype(np.uint8)

  @property
  def ndim(self) -> int:
    return 4

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, key):
    if isinstance(key, (int, np.integer)):
      return decode_center(self.jpeg(int(key)), self.size, self.resize)
    return dataclasses.replace(self, indices=self.indices[key])

  def jpeg(self, i: int) -> bytes:
    """The encoded image of the view's i-th example."""
    return data_source(self.version_dir, self.split)[int(self.indices[i])]['image']

  def decode(self) -> np.ndarray:
    out = np.empty(self.shape, np.uint8)

    def one(i):
      out[i] = self[i]

    list(_pool(self.workers).map(one, range(len(self))))
    return out

  def __array__(self, dtype=None, copy=None):
    del copy
    out = self.decode()
    return out if dtype is None else out.astype(dtype)


_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
  with _POOLS_LOCK:
    if workers not in _POOLS:
      _POOLS[workers] = concurrent.futures.ThreadPoolExecutor(max(1, workers),
                                                              thread_name_prefix='decode')
    return _POOLS[workers]


# ---------------------------------------------------------------------------
# Training stream.

class StreamingTrainStream:
  """data.TrainStream's batches for `Images`: the same epoch permutations and the
  same positions, decoded with random-resized crops on a grain thread pool and
  prefetched in order.

  `batch(step)` returns {'image': u8[b, size, size, 3], 'label': i32[b]}: this
  process's slice (b = batch_size / process_count) of global batch `step`. The
  model's step turns u8 pixels into [0, 1] floats on the device.
  """

  def __init__(self, images: Images, y: np.ndarray, batch_size: int, seed: int, *,
               process_index: int = 0, process_count: int = 1,
               crop_scale: tuple[float, float] = (0.08, 1.0), prefetch: int = 0):
    self.images, self.y, self.seed = images, np.asarray(y), seed
    # The order, the process's slice and the epoch count are the in-memory stream's.
    self.order = data.TrainStream(None, self.y, batch_size, seed, process_index=process_index,
                                  process_count=process_count)
    self.local_batch = self.order.local_batch
    self.crop_scale = tuple(float(s) for s in crop_scale)
    self.prefetch = prefetch or 2 * self.local_batch
    self._it, self._next = None, None

  def example(self, pos: int) -> dict[str, np.ndarray]:
    """This process's stream position `pos` (step · b + j), decoded and augmented."""
    order = self.order
    step, j = divmod(int(pos), self.local_batch)
    g = step * order.batch_size + order.process_index * self.local_batch + j
    epoch, within = divmod(g, order.n)
    k = int(order.permutation(epoch)[within])
    rng = np.random.default_rng([self.seed, AUGMENT_SALT, g])
    image = decode_random_crop(self.images.jpeg(k), rng, self.images.size, self.crop_scale)
    return {'image': image, 'label': self.y[k]}

  def _iterator(self, start_step: int):
    import grain  # pylint: disable=g-import-not-at-top
    b = self.local_batch
    ds = grain.MapDataset.range(start_step * b, 2**62).map(self.example)
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, self.images.workers),
                                              prefetch_buffer_size=self.prefetch))
    return iter(ds.batch(b))

  def batch(self, step: int) -> dict[str, np.ndarray]:
    if self._it is None or step != self._next:
      self._it = self._iterator(step)
    out = next(self._it)
    self._next = step + 1
    return {'image': np.asarray(out['image'], np.uint8), 'label': np.asarray(out['label'],
                                                                              np.int32)}

  def epoch(self, step: int) -> float:
    return self.order.epoch(step)


data.TRAIN_STREAMS[Images] = StreamingTrainStream
