"""Restricted ImageNet's two costs on this machine: the input pipeline and the ResNet step.

`pipeline_throughput` times tradeoff's streaming pipeline (tradeoff/streaming.py)
at 224 px on a stand-in ImageNet prepared by tfds's real imagenet2012 builder:
JPEGs of ImageNet's typical sizes (333-500 px a side) with photograph-like
structure (the record states their mean size in bytes and pixels; real
ImageNet files of that size hold about twice the bytes, so they decode
somewhat slower). Training images are
decoded, random-resized-cropped and flipped; evaluation images resized and
centre-cropped; images/s for each number of decoding threads.

`resnet_step` times the real pmapped training step of an ImageNet ResNet on
random 224 px inputs, standard and PGD-k, float32 and bfloat16. Comparing
the pipeline's images/s per host with the step's images/s per host says whether
the input keeps up on a given accelerator.
"""
from __future__ import annotations

import os
import tempfile
import time

import jax
import ml_collections
import numpy as np
import optax

from tradeoff import attacks
from tradeoff import configlib
from tradeoff import data
from tradeoff import experiment
from tradeoff import imagenet
from tradeoff import losses
from tradeoff import models
from tradeoff import parallel
from tradeoff import streaming
from tradeoff.bench import steps as bench_steps

TRAIN_CLASSES = tuple(range(151, 159))   # dogs: kept by Restricted ImageNet


def _prepare_standin(root: str, num_images: int) -> str:
  """A prepared imagenet2012 of `num_images` train and as many validation images."""
  from tradeoff import prepare  # pylint: disable=g-import-not-at-top
  manual = imagenet.write_ilsvrc_tars(os.path.join(root, 'manual'), TRAIN_CLASSES,
                                      -(-num_images // len(TRAIN_CLASSES)), num_images,
                                      size_range=(333, 500), natural=True, quality=90)
  data_dir = os.path.join(root, 'tfds')
  prepare.prepare('imagenet2012', data_dir, manual)
  return data_dir


def _images_per_s(fn, batch: int, seconds: float) -> tuple[float, int]:
  fn()  # warm-up: thread pools, first reads
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or n < 3:
    fn()
    n += 1
  return n * batch / (time.perf_counter() - t0), n


def pipeline_throughput(num_images: int = 512, size: int = 224, threads=(1, 2),
                        batch_size: int = 64, seconds: float = 10.0) -> dict:
  with tempfile.TemporaryDirectory() as root:
    t0 = time.perf_counter()
    data_dir = _prepare_standin(root, num_images)
    prepare_s = time.perf_counter() - t0
    version_dir = streaming.open_prepared('imagenet2012', data_dir)
    src = streaming.data_source(version_dir, 'train')
    jpegs = [src[i]['image'] for i in range(min(64, len(src)))]
    dims = [streaming._open(j).size for j in jpegs]  # pylint: disable=protected-access
    rows = []
    for t in threads:
      cfg = configlib.base_config(dataset='imagenet2012', norm='linf', eps=0.0,
                                  model='imagenet_resnet').data
      cfg.data_dir, cfg.image_size, cfg.workers = data_dir, size, int(t)
      ds = data.load(cfg, seed=0)
      stream = streaming.StreamingTrainStream(ds.x_train, ds.y_train, batch_size, seed=0)
      step = iter(range(10**9))
      train_ips, n_train = _images_per_s(lambda: stream.batch(next(step)), batch_size, seconds)
      view = ds.x_test[:batch_size]
      eval_ips, n_eval = _images_per_s(view.decode, batch_size, seconds)
      rows.append({'threads': int(t), 'train_images_per_s': train_ips, 'train_batches': n_train,
                   'eval_images_per_s': eval_ips, 'eval_batches': n_eval})
  return {'image_size': size, 'batch_size': batch_size, 'num_images': num_images,
          'cpu_count': os.cpu_count(), 'prepare_s': prepare_s,
          'jpeg_mean_bytes': float(np.mean([len(j) for j in jpegs])),
          'jpeg_mean_width_height': [float(np.mean([d[0] for d in dims])),
                                     float(np.mean([d[1] for d in dims]))],
          'jpeg_quality': 90, 'pipeline': rows}


def format_pipeline(out: dict) -> str:
  lines = [bench_steps.header(out),
           f"{out['image_size']} px; stand-in JPEGs {out['jpeg_mean_width_height'][0]:.0f}x"
           f"{out['jpeg_mean_width_height'][1]:.0f} px, {out['jpeg_mean_bytes'] / 1e3:.0f} kB "
           f"(quality {out['jpeg_quality']}); {out['cpu_count']} CPUs", '',
           '| decoding threads | train images/s (decode + random-resized crop + flip) | '
           'eval images/s (decode + resize + centre crop) |', '|---|---|---|']
  lines += [f"| {r['threads']} | {r['train_images_per_s']:.0f} | {r['eval_images_per_s']:.0f} |"
            for r in out['pipeline']]
  return '\n'.join(lines)


def resnet_step(depth: int = 50, batch_size: int = 8, pgd_steps=(0, 7),
                dtypes=('float32', 'bfloat16'), size: int = 224,
                seconds: float = 10.0) -> dict:
  rows = []
  rng = np.random.default_rng(0)
  x = rng.random((batch_size, size, size, 3), np.float32)
  y = rng.integers(0, 9, batch_size).astype(np.int32)
  for dtype in dtypes:
    module = models.ImageNetResNet(num_outputs=9, mean=imagenet.RESTRICTED_MEAN,
                                   std=imagenet.RESTRICTED_STD, depth=depth,
                                   bn_axis_name=parallel.AXIS, dtype=models.DTYPES[dtype])
    state = experiment.create_state(jax.random.key(0), module, x, optax.sgd(0.1, 0.9))
    for k in pgd_steps:
      eps = 0.005 if k else 0.0
      attack = attacks.Attack(norm='linf', eps=eps, num_steps=k, step_size=2.5 * eps / max(k, 1),
                              random_start=True, unroll=False)
      ctx = losses.Context(module=module, attack=attack, config=ml_collections.ConfigDict())
      p_step, rstate, sharded = bench_steps.pmapped(losses.get('pgd_at' if k else 'standard'),
                                                    ctx, state, {'image': x, 'label': y})
      timing = bench_steps.time_step(p_step, rstate, sharded, seconds)
      rows.append({'name': f'pgd{k}' if k else 'standard', 'dtype': dtype, 'pgd_steps': k,
                   'batch_size': batch_size, **timing,
                   'images_per_s': batch_size / timing['seconds_per_step']})
      del p_step, rstate, sharded
      jax.clear_caches()
  return {'model': f'imagenet_resnet{depth}', 'image_size': size, 'norm': 'linf',
          'eps': 0.005, 'steps': rows}


def format_resnet(out: dict) -> str:
  lines = [bench_steps.header(out), f"{out['model']}, {out['image_size']} px, "
           f"ℓ∞ ε = {out['eps']}, PGD-k with a rolled loop", '',
           '| step | dtype | batch | images/s | s/step | compile s |', '|---|---|---|---|---|---|']
  lines += [f"| {r['name']} | {r['dtype']} | {r['batch_size']} | {r['images_per_s']:.2f} | "
            f"{r['seconds_per_step']:.2f} | {r['compile_s']:.0f} |" for r in out['steps']]
  return '\n'.join(lines)
