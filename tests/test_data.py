"""Data: tfds loading, subsets, batch order as a pure function, exact evaluation."""
import os
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from tradeoff import accuracy
from tradeoff import data
from tradeoff import models
from tradeoff import parallel
from tradeoff import synthetic


def _data_cfg(name, data_dir='', **kw):
  cfg = ml_collections.ConfigDict({'name': name, 'data_dir': data_dir, 'download': False,
                                   'classes': (), 'train_size': 0,
                                   'synthetic': {'p': 0.9, 'eta': 0.5, 'd': 50,
                                                 'num_train': 2000, 'num_test': 1000,
                                                 'seed': 0, 'stratified_test': True}})
  cfg.update(kw)
  return cfg


def test_mnist_from_tfds(mnist_dir):
  ds = data.load(_data_cfg('mnist', mnist_dir), seed=0)
  assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_train.dtype == np.uint8
  assert ds.x_test.shape == (10000, 28, 28, 1)
  assert set(np.unique(ds.y_train)) == set(range(10)) and ds.bounds == (0.0, 1.0)
  x = data.to_float(ds.x_test[:10])
  assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
  assert ds.info['source'].startswith('tfds:mnist') and not ds.info['approximate_copy']


def test_missing_dataset_names_the_fix(tmp_path):
  with pytest.raises(FileNotFoundError, match='TFDS_DATA_DIR'):
    data.load(_data_cfg('mnist', str(tmp_path)), seed=0)
  with pytest.raises(ValueError, match="Unknown dataset 'mnsit'.*mnist"):
    data.load(_data_cfg('mnsit'), seed=0)


def test_binary_class_subset_is_relabelled(mnist_dir):
  full = data.load(_data_cfg('mnist', mnist_dir), seed=0)
  ds = data.load(_data_cfg('mnist', mnist_dir, classes=(5, 7)), seed=0)
  assert ds.num_classes == 2 and set(np.unique(ds.y_train)) == {0, 1}
  assert (ds.y_test == 0).sum() == (full.y_test == 5).sum()
  assert (ds.y_test == 1).sum() == (full.y_test == 7).sum()
  np.testing.assert_array_equal(ds.x_test[ds.y_test == 1][0], full.x_test[full.y_test == 7][0])
  with pytest.raises(ValueError, match=r'classes \[12\] are not in \[0, 10\)'):
    data.load(_data_cfg('mnist', mnist_dir, classes=(5, 12)), seed=0)


def test_balanced_subset_is_seeded_balanced_and_nested():
  y = np.repeat(np.arange(10), 100)
  np.random.default_rng(0).shuffle(y)
  a = data.balanced_subset_indices(y, 53, 10, seed=1)
  assert len(a) == 53 and len(set(a)) == 53
  counts = np.bincount(y[a], minlength=10)
  assert counts.max() - counts.min() <= 1
  np.testing.assert_array_equal(a, data.balanced_subset_indices(y, 53, 10, seed=1))
  assert not np.array_equal(a, data.balanced_subset_indices(y, 53, 10, seed=2))
  bigger = data.balanced_subset_indices(y, 200, 10, seed=1)
  assert set(data.balanced_subset_indices(y, 100, 10, seed=1)) <= set(bigger)
  with pytest.raises(ValueError, match='train_size=5'):
    data.balanced_subset_indices(y, 5, 10, seed=1)


def test_train_stream_is_a_pure_function_of_seed_and_step():
  x = np.arange(10, dtype=np.float32)[:, None]
  y = np.arange(10, dtype=np.int32)
  a, b = data.TrainStream(x, y, 4, seed=3), data.TrainStream(x, y, 4, seed=3)
  for step in (7, 0, 3):  # any order, fresh object: same batch
    np.testing.assert_array_equal(a.batch(step)['label'], b.batch(step)['label'])
  # Steps 0..4 cover positions 0..19: two full epochs, each a permutation.
  stream = np.concatenate([a.indices(s) for s in range(5)])
  assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
  assert not np.array_equal(stream[:10], stream[10:20])
  assert not np.array_equal(a.indices(0), data.TrainStream(x, y, 4, seed=4).indices(0))
  small = data.TrainStream(x[:3], y[:3], 8, seed=0)  # batch larger than the data
  assert len(small.batch(0)['label']) == 8


def test_eval_counts_a_short_last_batch_exactly():
  """37 examples in batches of 16: accuracy equals the brute-force count."""
  module = models.Linear(num_outputs=3)
  rng = np.random.default_rng(0)
  x = rng.random((37, 5), np.float32)
  y = rng.integers(0, 3, 37).astype(np.int32)
  params = module.init(jax.random.key(0), x[:1])['params']
  from tradeoff import attacks  # pylint: disable=g-import-not-at-top
  step = accuracy.make_eval_step(module, attacks.Attack(eps=0.0))
  n = jax.local_device_count()  # 2 fake CPU devices here; 1 on a 1-GPU host
  out = accuracy.evaluate(step, parallel.replicate(params, n), parallel.replicate({}, n), x, y,
                            16, jax.random.key(0))
  expected = float(np.mean(np.argmax(np.asarray(module.apply({'params': params}, x)), -1) == y))
  assert out['num_examples'] == 37
  assert out['clean_accuracy'] == pytest.approx(expected, abs=1e-9)
  assert out['robust_accuracy'] == pytest.approx(expected, abs=1e-9)  # ε = 0
  masks = [b['mask'] for b in data.eval_batches(x, y, 16)]
  assert [m.sum() for m in masks] == [16, 16, 5]


def test_synthetic_distribution_statistics():
  x, y = synthetic.sample(jax.random.key(0), 200_000, 0.9, 0.5, 3)
  x, y = np.asarray(x), np.asarray(y)
  assert set(np.unique(y)) == {-1, 1} and abs(y.mean()) < 0.01
  assert np.mean(x[:, 0] == y) == pytest.approx(0.9, abs=0.003)
  assert np.mean(x[:, 1:] * y[:, None]) == pytest.approx(0.5, abs=0.01)
  assert np.std(x[:, 1:] - 0.5 * y[:, None]) == pytest.approx(1.0, abs=0.01)
  ds = data.load(_data_cfg('synthetic'), seed=0)
  assert ds.x_train.shape == (2000, 51) and ds.bounds is None
  assert set(np.unique(ds.y_train)) == {0, 1}
  assert np.mean((2 * ds.y_test - 1) == ds.x_test[:, 0]) == pytest.approx(0.9, abs=0.03)


def test_crop_flip_augmentation_keeps_shape_and_content():
  rng = np.random.default_rng(0)
  images = rng.random((8, 32, 32, 3), np.float32)
  out = np.asarray(data.get_augmentation('crop_flip')(jax.random.key(0), images))
  assert out.shape == images.shape
  assert not np.allclose(out, images)
  # Each output is a shifted (maybe mirrored) window of its padded input.
  for img, o in zip(images, out):
    padded = np.pad(img, ((4, 4), (4, 4), (0, 0)))
    found = any(np.array_equal(o, cand[i:i + 32, j:j + 32]) for cand in (padded, padded[:, ::-1])
                for i in range(9) for j in range(9))
    assert found
  with pytest.raises(ValueError, match="Unknown data.augment 'flip'"):
    data.get_augmentation('flip')


def test_balanced_subset_fills_short_classes_from_the_others_up_to_the_full_set():
  y = np.repeat(np.arange(3), [10, 50, 40])  # class 0 is short
  sub = data.balanced_subset_indices(y, 60, 3, seed=0)
  np.testing.assert_array_equal(np.bincount(y[sub], minlength=3), [10, 25, 25])
  np.testing.assert_array_equal(data.balanced_subset_indices(y, 100, 3, seed=0), np.arange(100))
  sizes = (3, 30, 60, 90, 100)  # nested as n grows, with one seed
  subsets = [set(data.balanced_subset_indices(y, n, 3, seed=4)) for n in sizes]
  assert all(a <= b for a, b in zip(subsets, subsets[1:]))
  assert [len(s) for s in subsets] == list(sizes)


def test_decoded_arrays_are_cached_and_a_changed_dataset_is_decoded_again(
    mnist_dir, tmp_path, monkeypatch):
  monkeypatch.setenv(data.ARRAY_CACHE_ENV, str(tmp_path / 'cache'))
  version_dir = os.path.join(mnist_dir, 'mnist', '3.0.1')
  path = data._array_cache_path(version_dir)  # pylint: disable=protected-access
  assert path.startswith(str(tmp_path / 'cache'))
  data._read_prepared.cache_clear()  # pylint: disable=protected-access
  first = data._read_prepared('mnist', version_dir)  # pylint: disable=protected-access
  assert os.path.exists(path)
  data._read_prepared.cache_clear()  # pylint: disable=protected-access
  again = data._read_prepared('mnist', version_dir)  # pylint: disable=protected-access
  np.testing.assert_array_equal(first.x_train, again.x_train)
  np.testing.assert_array_equal(first.y_test, again.y_test)
  assert not again.x_train.flags.writeable
  copy = tmp_path / 'copy'
  shutil.copytree(version_dir, copy)
  before = data._array_cache_path(str(copy))  # pylint: disable=protected-access
  info = copy / 'dataset_info.json'
  os.utime(info, ns=(0, 0))
  assert data._array_cache_path(str(copy)) != before  # pylint: disable=protected-access
  monkeypatch.delenv(data.ARRAY_CACHE_ENV)
  assert data._array_cache_path(version_dir) is None  # pylint: disable=protected-access


def test_a_cached_read_does_not_import_tensorflow(mnist_dir):
  """TensorFlow (seconds to import) is needed to decode a prepared dataset, not to
  read it back from the array cache (the suite's, which conftest sets)."""
  assert os.environ.get(data.ARRAY_CACHE_ENV)
  data._read_prepared('mnist', os.path.join(mnist_dir, 'mnist', '3.0.1'))  # pylint: disable=protected-access
  script = ('import sys; import ml_collections; from tradeoff import data; '
            f'cfg = ml_collections.ConfigDict(dict(name="mnist", data_dir={mnist_dir!r}, '
            'download=False)); ds = data._load_tfds("mnist", cfg); '
            'print(len(ds.y_test), "tensorflow.python" in sys.modules)')
  out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                       check=True).stdout.split()
  assert out == ['10000', 'False']


def test_validation_split_is_held_out_balanced_seeded_and_recorded():
  full = data.load(_data_cfg('synthetic'), seed=0)
  ds = data.load(_data_cfg('synthetic', validation_size=100, train_size=500), seed=0)
  assert len(ds.y_val) == 100 and np.bincount(ds.y_val).tolist() == [50, 50]
  assert len(ds.y_train) == 500
  # Held out: no validation row is also a training row (rows of 51 Gaussian features are unique).
  rows = {r.tobytes() for r in full.x_train}
  val_rows = {r.tobytes() for r in ds.x_val}
  assert val_rows <= rows and not val_rows & {r.tobytes() for r in ds.x_train}
  info = ds.info['validation']
  assert info['num_examples'] == 100 and info['per_class'] == [50, 50] and info['seed'] == 0
  again = data.load(_data_cfg('synthetic', validation_size=100, train_size=500), seed=0)
  np.testing.assert_array_equal(again.x_val, ds.x_val)
  other = data.load(_data_cfg('synthetic', validation_size=100, train_size=500), seed=1)
  assert other.info['validation']['indices_sha256'] != info['indices_sha256']
  assert data.load(_data_cfg('synthetic'), seed=0).y_val is None
  with pytest.raises(ValueError, match=r'data.validation_size=5000 must be in \[2, 2000\]'):
    data.load(_data_cfg('synthetic', validation_size=5000), seed=0)


def test_restricted_imagenet_keeps_the_nine_ranges_in_order():
  from tradeoff import imagenet  # pylint: disable=g-import-not-at-top
  table = imagenet.restricted_label_table()
  kept = {int(c): int(table[c]) for c in np.flatnonzero(table >= 0)}
  assert len(kept) == (268 - 151 + 1) + 5 + 3 + 5 + 21 + 18 + 9 + 4 + 20 == 203
  assert (kept[151], kept[268], kept[281], kept[285]) == (0, 0, 1, 1)     # dog, cat
  assert (kept[30], kept[32], kept[33], kept[37]) == (2, 2, 3, 3)         # frog, turtle
  assert (kept[80], kept[100], kept[365], kept[382]) == (4, 4, 5, 5)      # bird, primate
  assert (kept[389], kept[397], kept[118], kept[121]) == (6, 6, 7, 7)     # fish, crab
  assert (kept[300], kept[319]) == (8, 8)                                 # insect
  for dropped in (0, 29, 38, 79, 101, 117, 122, 150, 269, 280, 286, 299, 320, 364, 383, 388,
                  398, 999):
    assert table[dropped] == -1
  np.testing.assert_array_equal(imagenet.restricted_labels([151, 0, 319]), [0, -1, 8])
  assert imagenet.RESTRICTED_CLASS_NAMES == ('dog', 'cat', 'frog', 'turtle', 'bird', 'primate',
                                             'fish', 'crab', 'insect')
