"""ImageNet and Restricted ImageNet, end to end on a tiny ImageNet the tests write:
tfds's real imagenet2012 builder prepares it, tradeoff streams it."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import conftest
from tradeoff import configlib
from tradeoff import data
from tradeoff import errors
from tradeoff import experiment  # noqa: F401  (registers the ImageNet datasets)
from tradeoff import imagenet
from tradeoff import prepare
from tradeoff import streaming
from tradeoff import train
from tradeoff import workdir as workdir_lib
import tiny_imagenet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='session')
def imagenet_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp('tiny_imagenet')
  manual = tiny_imagenet.write_manual_dir(str(root / 'manual'))
  data_dir = str(root / 'tfds')
  prepare.prepare('imagenet2012', data_dir, manual)
  return data_dir


def _data_cfg(name, data_dir, **overrides):
  c = configlib.base_config(dataset=name, norm='linf', eps=0.005, model='imagenet_resnet').data
  c.data_dir, c.image_size, c.eval_resize, c.workers = data_dir, 32, 36, 2
  c.update(overrides)
  return c


def _record_labels(images: streaming.Images) -> list[int]:
  """The ImageNet label of each example of a view, from its record's file name
  (train) -- independent of the label field the loader reads."""
  names, _ = imagenet.synset_names()
  index = {n: i for i, n in enumerate(names)}
  src = streaming.data_source(images.version_dir, images.split)
  return [index[src[int(i)]['file_name'].decode().split('_')[0]] for i in images.indices]


def test_restricted_imagenet_keeps_the_nine_ranges_relabelled_and_drops_the_rest(imagenet_dir):
  ds = data.load(_data_cfg('restricted_imagenet', imagenet_dir), seed=0)
  table = imagenet.restricted_label_table()
  assert ds.num_classes == 9 and ds.info['class_names'][0] == 'dog'
  # Train: three images of one class per range (both ends of ranges included) are
  # kept with the range's label; the two classes outside every range are gone.
  np.testing.assert_array_equal(np.bincount(ds.y_train, minlength=9),
                                tiny_imagenet.expected_restricted_train_counts())
  np.testing.assert_array_equal(ds.y_train, table[_record_labels(ds.x_train)])
  # Test = ImageNet's validation images in the ranges, labelled as the builder's
  # validation_labels.txt says.
  val = tiny_imagenet.expected_validation_labels()
  np.testing.assert_array_equal(np.sort(ds.y_test), np.sort(table[val][table[val] >= 0]))
  assert len(ds.y_test) == int(np.sum(table[val] >= 0)) > 0
  full = data.load(_data_cfg('imagenet2012', imagenet_dir), seed=0)
  assert full.num_classes == 1000 and len(full.y_test) == tiny_imagenet.NUM_VAL
  np.testing.assert_array_equal(full.y_train, _record_labels(full.x_train))
  assert len(full.y_train) == len(tiny_imagenet.TRAIN_CLASSES) * tiny_imagenet.PER_CLASS


def test_views_decode_centre_crops_of_the_configured_size(imagenet_dir):
  ds = data.load(_data_cfg('restricted_imagenet', imagenet_dir), seed=0)
  assert ds.x_train.shape == (len(ds.y_train), 32, 32, 3)
  batch = np.asarray(ds.x_test[:3])
  assert batch.shape == (3, 32, 32, 3) and batch.dtype == np.uint8
  np.testing.assert_array_equal(batch, np.asarray(ds.x_test[:3]))
  np.testing.assert_array_equal(batch[1], ds.x_test[1])
  x = data.to_float(ds.x_test[[2, 0]])
  assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
  np.testing.assert_array_equal(x[1], data.to_float(batch[:1])[0])


def test_the_stream_is_a_pure_function_of_the_step_split_across_processes(imagenet_dir):
  ds = data.load(_data_cfg('restricted_imagenet', imagenet_dir), seed=0)

  def stream(**kw):
    return streaming.StreamingTrainStream(ds.x_train, ds.y_train, 8, seed=1, **kw)

  one = stream()
  run = [one.batch(s) for s in range(6)]      # crosses epochs: 6 * 8 > 27 examples
  assert run[0]['image'].shape == (8, 32, 32, 3) and run[0]['image'].dtype == np.uint8
  # The same examples in the same order as the in-memory stream.
  order = data.TrainStream(None, ds.y_train, 8, seed=1)
  for s, b in enumerate(run):
    np.testing.assert_array_equal(b['label'], ds.y_train[order.indices(s)])
  # A fresh stream started at step 4 (a resumed run) gives the same batches.
  resumed = stream()
  for s in (4, 5):
    np.testing.assert_array_equal(resumed.batch(s)['image'], run[s]['image'])
  # Two processes each get their half of the same global batch.
  halves = [stream(process_index=p, process_count=2).batch(3) for p in (0, 1)]
  for key in ('image', 'label'):
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), run[3][key])
  # Augmentation differs between epochs: the same example is cropped anew.
  assert not np.array_equal(run[0]['image'], stream(crop_scale=(1.0, 1.0)).batch(0)['image'])


def test_random_resized_boxes_stay_inside_the_image_with_the_asked_area():
  rng = np.random.default_rng(0)
  for _ in range(200):
    w, h = (int(v) for v in rng.integers(20, 400, 2))
    left, top, cw, ch = streaming.random_resized_box(rng, w, h, (0.08, 1.0))
    assert 0 <= left and left + cw <= w and 0 <= top and top + ch <= h and cw > 0 and ch > 0
  left, top, cw, ch = streaming.random_resized_box(rng, 100, 10, (0.9, 1.0))  # falls back
  assert (cw, ch) == (13, 10) and top == 0


_NO_TENSORFLOW = '''
import sys
class _Hidden:
  def __init__(self, inner): self.inner = inner
  def find_spec(self, name, path=None, target=None):
    if name == 'tensorflow' or name.startswith('tensorflow.'):
      return None
    return self.inner.find_spec(name, path, target)
  def __getattr__(self, name): return getattr(self.inner, name)
sys.meta_path[:] = [_Hidden(f) if getattr(f, '__name__', '') == 'PathFinder' else f
                    for f in sys.meta_path]
'''


@pytest.mark.slow
def test_reading_and_streaming_need_no_tensorflow(imagenet_dir, tmp_path):
  script = _NO_TENSORFLOW + textwrap.dedent(f'''
      import numpy as np
      from tradeoff import configlib, data, experiment, streaming
      c = configlib.base_config(dataset='restricted_imagenet', norm='linf', eps=0.005,
                                model='imagenet_resnet').data
      c.data_dir, c.image_size, c.workers = {imagenet_dir!r}, 32, 2
      ds = data.load(c, seed=0)
      b = data.train_stream(ds, 8, 0).batch(0)
      x = np.asarray(ds.x_test[:2])
      assert 'tensorflow' not in sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m)
      print('OK', b['image'].shape, x.shape)
  ''')
  env = {**os.environ, 'TRADEOFF_ARRAY_CACHE': str(tmp_path / 'cache')}
  out = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'OK (8, 32, 32, 3) (2, 32, 32, 3)' in out.stdout


def test_unprepared_data_and_double_augmentation_are_clear_errors(imagenet_dir, tmp_path):
  with pytest.raises(errors.DataNotFoundError,
                     match=r"'imagenet2012' is not prepared in .*ILSVRC2012_img_train.tar.*"
                           r"python -m tradeoff.prepare imagenet2012"):
    data.load(_data_cfg('restricted_imagenet', str(tmp_path)), seed=0)
  with pytest.raises(errors.UserError, match=r"data.augment='crop_flip'.*set data.augment=none"):
    data.load(_data_cfg('restricted_imagenet', imagenet_dir, augment='crop_flip'), seed=0)
  with pytest.raises(errors.UserError, match=r'data.image_size=32, data.eval_resize=16'):
    data.load(_data_cfg('restricted_imagenet', imagenet_dir, eval_resize=16), seed=0)


def _small_config(data_dir):
  """Restricted ImageNet at 16 px with a small MLP: the streaming path at test speed."""
  c = configlib.load(os.path.join(REPO, 'configs', 'restricted_imagenet_linf.py:smoke'))
  c.data.data_dir, c.data.image_size, c.data.workers = data_dir, 16, 2
  c.model.name, c.model.hidden = 'mlp', (32,)
  c.num_train_steps, c.checkpoint_every, c.log_every = 6, 2, 1
  c.tensorboard = False
  return c


def test_a_killed_run_resumes_on_exactly_the_uninterrupted_batches(imagenet_dir, tmp_path,
                                                                    monkeypatch):
  clean = train.train_and_evaluate(_small_config(imagenet_dir), str(tmp_path / 'clean'))
  real = data.train_stream

  class SignalledAtStep3:
    def __init__(self, inner):
      self.inner = inner

    def batch(self, step):
      if step == 3:   # made while step 2 runs: SIGINT arrives mid-training
        os.kill(os.getpid(), signal.SIGINT)
      return self.inner.batch(step)

    def epoch(self, step):
      return self.inner.epoch(step)

  monkeypatch.setattr(data, 'train_stream', lambda *a, **k: SignalledAtStep3(real(*a, **k)))
  wd = str(tmp_path / 'killed')
  with pytest.raises(errors.Interrupted):
    train.train_and_evaluate(_small_config(imagenet_dir), wd)
  monkeypatch.setattr(data, 'train_stream', real)
  resumed = train.train_and_evaluate(_small_config(imagenet_dir), wd)
  assert 0 < resumed['resumed_from_step'] < 6
  jax.tree.map(np.testing.assert_array_equal, _params(str(tmp_path / 'clean')), _params(wd))
  assert resumed['clean_accuracy'] == clean['clean_accuracy']


def _params(workdir):
  return workdir_lib.raw_state(workdir)['params']


@pytest.mark.slow
def test_the_smoke_config_trains_an_imagenet_resnet_on_restricted_imagenet(imagenet_dir,
                                                                           tmp_path):
  wd = str(tmp_path / 'rin')
  # One CPU device, as `tradeoff.main` runs on a CPU host: with two simulated
  # devices the in-process all-reduce once waited past its 600 s limit while the
  # other test worker and the grain decoding threads held both cores. Training on
  # several devices is the multi-device and multi-process tests' subject.
  env = {**os.environ, 'TFDS_DATA_DIR': imagenet_dir, 'XLA_FLAGS': conftest.xla_flags(1)}
  out = subprocess.run([sys.executable, '-m', 'tradeoff.main',
                        '--config=configs/restricted_imagenet_linf.py:smoke', f'--workdir={wd}'],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  results = json.load(open(os.path.join(wd, 'results.json')))
  assert results['train_steps'] == 4 and results['data']['num_classes'] == 9
  assert results['data']['source'].startswith('tfds:imagenet2012:')
  assert results['data']['streaming']['image_size'] == 64
  num_test = len(data.load(_data_cfg('restricted_imagenet', imagenet_dir), 0).y_test)
  assert num_test > 16 and results['num_examples'] == 16   # the smoke run's num_eval_examples
  assert results['config']['model']['depth'] == 18


def test_figure_2_runs_on_streamed_restricted_imagenet(imagenet_dir, tmp_path):
  from tradeoff.figures import perception  # pylint: disable=g-import-not-at-top
  from tradeoff.figures import specs  # pylint: disable=g-import-not-at-top
  panel = {}
  for role, eps in (('standard', 0.0), ('robust_linf', 0.005)):
    c = _small_config(imagenet_dir)
    c.attack.eps, c.num_train_steps = eps, 2
    panel[role] = str(tmp_path / role)
    train.train_and_evaluate(c, panel[role])
  spec = specs.load_spec(None)
  spec.restricted_imagenet.update({'standard': panel['standard'], 'independent': '',
                                   'robust_l2': '', 'robust_linf': panel['robust_linf'],
                                   'large_eps_linf': 0.05})
  spec.num_eval_examples = 12
  out = perception.gradients_experiment(spec, 'restricted_imagenet')
  assert out['labels'] == list(range(9))           # the first test image of each superclass
  assert np.asarray(out['images']).shape == (9, 16, 16, 3)
  for role in ('standard', 'robust_linf'):
    assert np.asarray(out['models'][role]['gradients']).shape == (9, 16, 16, 3)
