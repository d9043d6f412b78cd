"""Datasets as in-memory arrays, and the batch order as a pure function.

Pixels are kept as uint8 on the host and become f32 in [0, 1] per batch; any
normalisation happens inside the model, so attacks work in pixel space and
their ε means what the paper's does.

The training stream is the concatenation of per-epoch permutations, each a
pure function of (seed, epoch); batch `s` is positions [s·B, (s+1)·B) of that
stream. So a resumed run draws exactly the batches the uninterrupted run would
have, and a training set smaller than a batch is still well defined.
"""
from __future__ import annotations

import dataclasses
import hashlib
import functools
import logging
import os
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from tradeoff import errors
from tradeoff import registry

DATASETS: registry.Registry[Callable[[ml_collections.ConfigDict], 'Dataset']] = (
    registry.Registry('dataset'))

APPROXIMATE_CIFAR10_MARKER = 'APPROXIMATE_CIFAR10_JPEG75.txt'


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Train and test arrays plus what the model and attack need to know.

  Attributes:
    name: the dataset's registry name.
    x_train: u8[N, H, W, C] pixels (or f32[N, D] features for synthetic data).
    y_train: i32[N] class indices in [0, num_classes).
    x_test: like x_train.
    y_test: like y_train.
    num_classes: number of classes after any class subset.
    mean: per-channel mean of [0, 1] pixels, for normalisation in the model.
    std: per-channel std of [0, 1] pixels.
    bounds: (lo, hi) the valid input box that attacks project onto, or None
      for unbounded (synthetic) features.
    info: provenance written to results.json (source, sizes, classes, ...).
    x_val: held-out validation inputs taken from the training set
      (data.validation_size), or None.
    y_val: their labels, or None.
  """
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  bounds: tuple[float, float] | None
  info: dict
  x_val: np.ndarray | None = None
  y_val: np.ndarray | None = None


def to_float(x: np.ndarray) -> np.ndarray:
  """u8 pixels -> f32 in [0, 1]; float features pass through as f32. Array-likes
  (streaming.Images) are decoded first."""
  x = np.asarray(x)
  if x.dtype == np.uint8:
    return x.astype(np.float32) * np.float32(1 / 255)
  return x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# tensorflow-datasets sources.

_TFDS_STATS = {  # per-channel mean / std of the training pixels in [0, 1]
    'mnist': ((0.1307,), (0.3081,), 10),
    'fashion_mnist': ((0.2860,), (0.3530,), 10),
    'cifar10': ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 10),
}


def resolve_data_dir(data_dir: str) -> str | None:
  """The config's data_dir, else $TFDS_DATA_DIR, else None (tfds's default)."""
  return os.path.expanduser(data_dir or os.environ.get('TFDS_DATA_DIR', '')) or None


def _load_tfds(name: str, data_cfg: ml_collections.ConfigDict) -> Dataset:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir = resolve_data_dir(data_cfg.data_dir)
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    where = f'{name!r} is not prepared in {builder.data_dir}'
    if not data_cfg.download:
      raise errors.DataNotFoundError(f'tfds dataset {where}. {_how_to_get(name)}')
    hosts = _download_hosts(builder)
    if not any(can_connect(host, port) for host, port in hosts):
      raise errors.DataNotFoundError(
          f'tfds dataset {where}, and its download servers '
          f'({", ".join(h for h, _ in hosts)}) cannot be reached from here. '
          f'{_how_to_get(name)}')
    _import_tensorflow()
    builder.download_and_prepare()
  return _read_prepared(name, builder.data_dir)


def _import_tensorflow():
  """TensorFlow, which tfds needs to prepare and decode a dataset (not to read its
  info): imported only then, as it takes seconds and a cached read needs none of it."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], 'GPU')  # TF only reads files; JAX owns the accelerator.


@functools.lru_cache(maxsize=4)
def _read_prepared(name: str, version_dir: str) -> Dataset:
  """The arrays of a prepared tfds dataset, read once per process.

  Figure commands and sweeps restore many runs of one dataset in one process;
  the arrays are made read-only, so sharing them cannot leak changes between runs.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder_from_directory(version_dir)
  cache = _array_cache_path(version_dir)
  if cache and os.path.exists(cache):
    with np.load(cache) as z:
      flat = {k: z[k] for k in z.files}
  else:
    _import_tensorflow()
    flat = {}
    for split in ('train', 'test'):
      ds = builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
      x, y = tfds.as_numpy(ds)
      flat[f'x_{split}'], flat[f'y_{split}'] = np.asarray(x, np.uint8), np.asarray(y, np.int32)
    if cache:
      _write_array_cache(cache, flat)
  arrays = {}
  for split in ('train', 'test'):
    x, y = flat[f'x_{split}'], flat[f'y_{split}']
    x.setflags(write=False)
    y.setflags(write=False)
    arrays[split] = (x, y)
  mean, std, num_classes = _TFDS_STATS[name]
  root = os.path.dirname(os.path.dirname(version_dir))  # <root>/<name>/<version>
  approximate = os.path.exists(os.path.join(root, APPROXIMATE_CIFAR10_MARKER))
  if approximate:
    logging.warning('%s in %s is the APPROXIMATE (JPEG q75) copy: label results '
                    'as such.', name, root)
  info = {'source': f'tfds:{name}:{builder.info.version}', 'data_dir': root,
          'approximate_copy': approximate,
          'class_names': list(builder.info.features['label'].names)}
  return Dataset(name, *arrays['train'], *arrays['test'], num_classes=num_classes,
                 mean=mean, std=std, bounds=(0.0, 1.0), info=info)


ARRAY_CACHE_ENV = 'TRADEOFF_ARRAY_CACHE'


def _array_cache_path(version_dir: str) -> str | None:
  """Where the decoded arrays of a prepared dataset are cached, or None.

  Decoding MNIST's 70 000 PNGs takes seconds and CIFAR-10's tens of seconds in
  every process that loads them. With $TRADEOFF_ARRAY_CACHE set to a directory,
  the decoded arrays are kept there as .npz, named by a hash of the prepared
  files' names, sizes and modification times, so a re-prepared dataset is
  decoded again rather than read stale.
  """
  root = os.environ.get(ARRAY_CACHE_ENV, '')
  if not root:
    return None
  return os.path.join(os.path.expanduser(root), f'{prepared_files_key(version_dir)}.npz')


def prepared_files_key(version_dir: str, part: str = '') -> str:
  """A cache key for what was read from a prepared dataset: a hash of its directory
  and its files' names, sizes and modification times (only files whose name holds
  `-{part}.` when `part` names a split), so re-preparing changes the key."""
  h = hashlib.sha256((os.path.abspath(version_dir) + (f':{part}' if part else '')).encode())
  for entry in sorted(os.scandir(version_dir), key=lambda e: e.name):
    if entry.is_file() and (not part or f'-{part}.' in entry.name):
      st = entry.stat()
      h.update(f'{entry.name}:{st.st_size}:{st.st_mtime_ns};'.encode())
  return h.hexdigest()[:24]


def _write_array_cache(path: str, arrays: dict[str, np.ndarray]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f'{path}.{os.getpid()}.tmp.npz'
  np.savez(tmp, **arrays)
  os.replace(tmp, path)  # concurrent writers each write whole files


def _how_to_get(name: str) -> str:
  return (f'Point --config.data.data_dir or $TFDS_DATA_DIR at a data dir where {name!r} is '
          f'prepared (offline: `tfds build {name} --data_dir=DIR` on a connected machine, or '
          f'its manual-download instructions, then copy DIR), or run once with internet access '
          f'and --config.data.download=True (the default) to let tfds download it.')


def _download_hosts(builder) -> list[tuple[str, int]]:
  """(host, port) of the URLs tfds would download a dataset from."""
  import urllib.parse  # pylint: disable=g-import-not-at-top
  try:
    urls = list(builder.url_infos or ())
  except Exception:  # pylint: disable=broad-except  (builders without a checksums file)
    urls = []
  hosts = []
  for url in urls + ['https://storage.googleapis.com/tfds-data']:
    parsed = urllib.parse.urlparse(url)
    if parsed.hostname:
      entry = (parsed.hostname, parsed.port or (80 if parsed.scheme == 'http' else 443))
      if entry not in hosts:
        hosts.append(entry)
  return hosts


def can_connect(host: str, port: int, timeout: float = 5.0) -> bool:
  """Whether a TCP connection to host:port opens within `timeout` seconds
  (name resolution included), so an offline first run fails in seconds
  instead of retrying downloads for minutes."""
  import socket  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  result = []

  def attempt():
    try:
      with socket.create_connection((host, port), timeout=timeout):
        result.append(True)
    except OSError:
      result.append(False)

  thread = threading.Thread(target=attempt, daemon=True)
  thread.start()
  thread.join(timeout)
  return bool(result and result[0])



for _name in _TFDS_STATS:
  DATASETS.register(_name)(functools.partial(_load_tfds, _name))


# ---------------------------------------------------------------------------
# Subsets.

def select_classes(ds: Dataset, classes) -> Dataset:
  """Keeps the listed classes and relabels them 0..k-1 in the given order.

  Example: classes=(5, 7) gives binary MNIST with 5 -> 0 and 7 -> 1.
  """
  classes = tuple(int(c) for c in classes)
  if len(classes) < 2 or len(set(classes)) != len(classes):
    raise errors.UserError(f'data.classes={classes} must list at least 2 distinct classes.')
  bad = [c for c in classes if not 0 <= c < ds.num_classes]
  if bad:
    raise errors.UserError(f'data.classes={classes}: classes {bad} are not in '
                     f'[0, {ds.num_classes}) for dataset {ds.name!r}.')
  lut = np.full(ds.num_classes, -1, np.int32)
  lut[list(classes)] = np.arange(len(classes), dtype=np.int32)

  def keep(x, y):
    m = lut[y] >= 0
    return x[m], lut[y[m]]

  return dataclasses.replace(
      ds, **dict(zip(('x_train', 'y_train'), keep(ds.x_train, ds.y_train))),
      **dict(zip(('x_test', 'y_test'), keep(ds.x_test, ds.y_test))),
      num_classes=len(classes), info={**ds.info, 'classes': list(classes), **(
          {'class_names': [ds.info['class_names'][c] for c in classes]}
          if 'class_names' in ds.info else {})})


# Salts of the seeded draws from the training set, so the validation split and
# the training subset of one seed are independent draws.
TRAIN_SUBSET_SALT = 0x5EB5E7
VALIDATION_SALT = 0x7A11D


def balanced_subset_indices(y: np.ndarray, n: int, num_classes: int, seed: int,
                            salt: int = TRAIN_SUBSET_SALT,
                            name: str = 'data.train_size') -> np.ndarray:
  """Indices of a class-balanced random subset of size n, a pure fn of seed.

  Each class gets n // K examples and the first n % K classes one more; a class
  with fewer examples gives all it has and the shortfall is shared out the same
  way among the others (so n = len(y) is the whole set). Within a class the
  choice is a prefix of a seeded permutation, so subsets of growing n drawn
  with one seed are nested.
  """
  if not num_classes <= n <= len(y):
    raise errors.UserError(f'{name}={n} must be in [{num_classes}, {len(y)}] '
                     f'(number of classes, training examples).')
  rng = np.random.default_rng([seed, salt])
  available = [int(np.sum(y == k)) for k in range(num_classes)]
  counts = [0] * num_classes
  left, open_classes = n, list(range(num_classes))
  while left > 0:
    share, extra = divmod(left, len(open_classes))
    still_open = []
    for i, k in enumerate(open_classes):
      take = min(share + (i < extra), available[k] - counts[k])
      counts[k] += take
      left -= take
      if counts[k] < available[k]:
        still_open.append(k)
    open_classes = still_open
  chosen = []
  for k, m in enumerate(counts):
    idx = np.flatnonzero(y == k)
    chosen.append(idx[rng.permutation(len(idx))[:m]])
  return np.sort(np.concatenate(chosen))


def load(data_cfg: ml_collections.ConfigDict, seed: int) -> Dataset:
  """Loads `data_cfg.name`, then applies `classes`, `validation_size` and `train_size`.

  The validation split is a class-balanced draw of `validation_size` training
  examples (seeded by `seed`), removed from the training set before the
  `train_size` subset is drawn from what is left.
  """
  ds = DATASETS.get(data_cfg.name)(data_cfg)
  if data_cfg.classes:
    ds = select_classes(ds, data_cfg.classes)
  info = {}
  num_val = int(data_cfg.get('validation_size', 0))
  if num_val > 0:
    val = balanced_subset_indices(ds.y_train, num_val, ds.num_classes, seed,
                                  salt=VALIDATION_SALT, name='data.validation_size')
    rest = np.setdiff1d(np.arange(len(ds.y_train)), val)
    if len(rest) < ds.num_classes:
      raise errors.UserError(f'data.validation_size={num_val} leaves {len(rest)} training '
                             f'examples; at least {ds.num_classes} are needed.')
    ds = dataclasses.replace(ds, x_val=ds.x_train[val], y_val=ds.y_train[val],
                             x_train=ds.x_train[rest], y_train=ds.y_train[rest])
    info['validation'] = {
        'num_examples': num_val, 'seed': int(seed), 'drawn_from': 'train',
        'per_class': np.bincount(ds.y_val, minlength=ds.num_classes).tolist(),
        'indices_sha256': hashlib.sha256(val.astype(np.int64).tobytes()).hexdigest()}
  if data_cfg.train_size > 0:
    idx = balanced_subset_indices(ds.y_train, data_cfg.train_size, ds.num_classes, seed)
    ds = dataclasses.replace(ds, x_train=ds.x_train[idx], y_train=ds.y_train[idx])
  info = {**ds.info, 'name': ds.name, 'num_train': len(ds.y_train),
          'num_test': len(ds.y_test), 'num_classes': ds.num_classes, **info}
  return dataclasses.replace(ds, info=info)


# ---------------------------------------------------------------------------
# Batches.

class TrainStream:
  """Batch `step` of the seeded, epoch-permuted training stream.

  `batch(step)` is a pure function of (seed, step): it depends on nothing that
  happened before, which is what makes a resumed run identical.
  """

  def __init__(self, x: np.ndarray | None, y: np.ndarray, batch_size: int, seed: int, *,
               process_index: int = 0, process_count: int = 1):
    if batch_size % process_count:
      raise errors.UserError(f'data.batch_size={batch_size} must be a multiple of the '
                             f'{process_count} processes.')
    self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
    self.n = len(y)
    self.local_batch = batch_size // process_count
    self.process_index = process_index

  @functools.lru_cache(maxsize=4)
  def permutation(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(self.n)

  def indices(self, step: int) -> np.ndarray:
    pos = step * self.batch_size + np.arange(self.batch_size)
    epochs, within = np.divmod(pos, self.n)
    out = np.empty(self.batch_size, np.int64)
    for e in np.unique(epochs):
      m = epochs == e
      out[m] = self.permutation(int(e))[within[m]]
    return out

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's slice of global batch `step` (all of it with one process)."""
    lo = self.process_index * self.local_batch
    idx = self.indices(step)[lo:lo + self.local_batch]
    return {'image': to_float(self.x[idx]), 'label': self.y[idx]}

  def epoch(self, step: int) -> float:
    return step * self.batch_size / self.n


# Training streams of image containers other than in-memory arrays, by the
# container's type: {type: stream class}; a module that defines such a container
# registers its stream here (tradeoff/streaming.py: Images -> StreamingTrainStream).
TRAIN_STREAMS: dict[type, Callable] = {}


def train_stream(ds: Dataset, batch_size: int, seed: int, *, process_index: int = 0,
                 process_count: int = 1, crop_scale=(0.08, 1.0)):
  """The training stream of `ds`: TrainStream for in-memory arrays, the registered
  stream for other containers (streaming.Images: decoded, randomly cropped,
  prefetched). Both give this process's slice of the same global batches."""
  for kind, stream in TRAIN_STREAMS.items():
    if isinstance(ds.x_train, kind):
      return stream(ds.x_train, ds.y_train, batch_size, seed, process_index=process_index,
                    process_count=process_count, crop_scale=crop_scale)
  return TrainStream(ds.x_train, ds.y_train, batch_size, seed, process_index=process_index,
                     process_count=process_count)


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """Fixed-size batches covering x once; the last is padded with mask = 0.

  Metrics are aggregated as masked sums and counts, so every example counts
  exactly once and padding counts never. With several processes, each gets its
  slice (batch_size / process_count rows) of every global batch, and the same
  number of batches.
  """
  local = batch_size // process_count
  for start in range(0, len(y), batch_size):
    lo = min(len(y), start + process_index * local)
    hi = min(len(y), lo + local, start + batch_size)
    xb, yb = to_float(x[lo:hi]), y[lo:hi]
    k = len(yb)
    mask = np.ones(local, np.float32)
    if k < local:
      pad = local - k
      shape = tuple(x.shape[1:])
      xb = np.concatenate([xb.reshape((k,) + shape), np.zeros((pad,) + shape, np.float32)])
      yb = np.concatenate([yb, np.zeros(pad, y.dtype)])
      mask[k:] = 0
    yield {'image': xb, 'label': yb, 'mask': mask}


# ---------------------------------------------------------------------------
# Augmentation, on device inside the train step.

def _crop_flip(rng: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
  """Random crop after `pad` zero pixels each side, and a random left-right flip."""
  b, h, w, _ = images.shape
  k_crop, k_flip = jax.random.split(rng)
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(k_crop, (b, 2), 0, 2 * pad + 1)
  crop = jax.vmap(lambda im, o: jax.lax.dynamic_slice(
      im, (o[0], o[1], 0), (h, w, im.shape[-1])))
  out = crop(padded, offsets)
  flip = jax.random.bernoulli(k_flip, 0.5, (b, 1, 1, 1))
  return jnp.where(flip, out[:, :, ::-1], out)


AUGMENTATIONS = {'none': lambda rng, images: images, 'crop_flip': _crop_flip}


def get_augmentation(name: str):
  registry.check_choice('data.augment', name, sorted(AUGMENTATIONS))
  return AUGMENTATIONS[name]
