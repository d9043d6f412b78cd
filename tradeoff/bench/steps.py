"""The benchmarked training step and its timings; `python -m tradeoff.bench` runs them.

Madry et al. MNIST CNN, ℓ∞ ε = 0.3, PGD-k with step 2.5·ε/k from a random start,
Adam; random inputs (no dataset needed). See tradeoff/bench/__main__.py for the command
and what the figures mean.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from tradeoff import attacks
from tradeoff import bench_xla
from tradeoff import data
from tradeoff import experiment
from tradeoff import losses
from tradeoff import models
from tradeoff import parallel
from tradeoff import train


def setup_step(num_steps: int, batch_size: int):
  """The benchmarked step: (loss_fn, ctx, state, batch) for Madry CNN + PGD-k, ℓ∞ ε = 0.3."""
  module = models.MadryCNN(num_outputs=10, mean=(0.1307,), std=(0.3081,))
  attack = attacks.Attack(norm='linf', eps=0.3 if num_steps else 0.0, num_steps=num_steps,
                          step_size=2.5 * 0.3 / max(num_steps, 1), restarts=1,
                          random_start=True)
  loss_fn = losses.get('pgd_at' if num_steps else 'standard')
  ctx = losses.Context(module=module, attack=attack, config=ml_collections.ConfigDict())
  rng = np.random.default_rng(0)
  x = rng.random((batch_size, 28, 28, 1), np.float32)
  y = rng.integers(0, 10, batch_size).astype(np.int32)
  state = experiment.create_state(jax.random.key(0), module, x, optax.adam(1e-3))
  return loss_fn, ctx, state, {'image': x, 'label': y}


def pmapped(loss_fn, ctx, state, batch):
  """(pmapped train step, state replicated and batch sharded over all local devices)."""
  n = jax.local_device_count()
  p_step = train.make_p_train_step(loss_fn, ctx, data.get_augmentation('none'))
  return p_step, parallel.replicate(state, n), parallel.shard(batch, n)


def header(out: dict) -> str:
  """First line of every bench table: where and with what the record was made."""
  return (f"device: {out['device']}; jax {out['versions']['jax']}; "
          f"XLA_FLAGS={out['xla_flags']!r}; commit {out['commit'][:12]}")


def bench_step(num_steps: int, batch_size: int, seconds: float) -> dict:
  """Images/s, compile seconds and GFLOP/s of one training step configuration."""
  loss_fn, ctx, state, batch = setup_step(num_steps, batch_size)

  # FLOPs of the same step, single device, from XLA:CPU's cost analysis (jit
  # compiles for the platform its arguments live on).
  single = jax.jit(lambda s, b, k: train.train_step(
      s, b, k, loss_fn=loss_fn, ctx=ctx, augment=data.get_augmentation('none'), axis_name=None))
  on_cpu = jax.device_put((state, batch, jax.random.key(1)), jax.devices('cpu')[0])
  flops = _flops(single, *on_cpu)
  dense_flops = bench_xla.step_flops(num_steps, batch_size)

  p_step, rstate, sharded = pmapped(loss_fn, ctx, state, batch)
  timing = time_step(p_step, rstate, sharded, seconds)
  per_step = timing['seconds_per_step']
  return {'name': f'pgd{num_steps}' if num_steps else 'standard', 'pgd_steps': num_steps,
          'batch_size': batch_size, **timing, 'images_per_s': batch_size / per_step,
          'gflop_per_step': flops / 1e9, 'gflops': flops / per_step / 1e9,
          'dense_gflop_per_step': dense_flops / 1e9, 'dense_gflops': dense_flops / per_step / 1e9}


def time_step(p_step, rstate, sharded, seconds: float) -> dict:
  """Seconds per call of a pmapped train step after two warm-up calls (at least 3
  timed calls, and `seconds`), and the first call's extra time (compilation)."""
  key = jax.random.key(1)
  t0 = time.perf_counter()
  rstate, m = p_step(rstate, sharded, key)
  jax.block_until_ready(m)
  first_call = time.perf_counter() - t0
  for _ in range(2):  # warm-up
    rstate, m = p_step(rstate, sharded, key)
  jax.block_until_ready(m)
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or n < 3:
    rstate, m = p_step(rstate, sharded, key)
    n += 1
  jax.block_until_ready(m)
  per_step = (time.perf_counter() - t0) / n
  return {'timed_steps': n, 'seconds_per_step': per_step, 'compile_s': first_call - per_step}


def _timed(fn, *args, seconds: float = 3.0) -> float:
  """Mean seconds per call of a jitted fn after warm-up."""
  jax.block_until_ready(fn(*args))
  jax.block_until_ready(fn(*args))
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or n < 3:
    out = fn(*args)
    n += 1
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / n


def _flops(fn, *args) -> float:
  cost = fn.lower(*args).compile().cost_analysis()
  return float((cost[0] if isinstance(cost, (list, tuple)) else cost)['flops'])


def bench_layers(batch_size: int, seconds: float) -> dict:
  """GFLOP/s of the Madry CNN's convolutions, and PGD throughput with restarts."""
  conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                                   dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  rows = []
  for name, hw, cin, cout in (('conv1', 28, 1, 32), ('conv2', 14, 32, 64)):
    x = jax.random.normal(jax.random.key(0), (batch_size, hw, hw, cin))
    k = jax.random.normal(jax.random.key(1), (5, 5, cin, cout))
    for part, fn in (('forward', jax.jit(conv)),
                     ('input_grad', jax.jit(jax.grad(lambda x, k: conv(x, k).sum(), 0))),
                     ('kernel_grad', jax.jit(jax.grad(lambda x, k: conv(x, k).sum(), 1)))):
      t = _timed(fn, x, k, seconds=seconds)
      rows.append({'layer': f'{name} 5x5 {cin}->{cout} {hw}x{hw}', 'part': part,
                   'ms': 1e3 * t, 'gflops': _flops(fn, x, k) / t / 1e9})
  module = models.MadryCNN(num_outputs=10, mean=(0.1307,), std=(0.3081,))
  params = module.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  x = jax.random.uniform(jax.random.key(2), (batch_size, 28, 28, 1))
  y = jnp.zeros(batch_size, jnp.int32)
  restarts = []
  for r in (1, 5):
    atk = attacks.Attack(norm='linf', eps=0.3, num_steps=20, step_size=0.0375, restarts=r)
    fn = jax.jit(lambda x, y, k, atk=atk: atk(lambda z: module.apply({'params': params}, z),
                                            x, y, k))
    t = _timed(fn, x, y, jax.random.key(3), seconds=seconds)
    restarts.append({'attack': f'pgd20 x{r} restarts', 'image_steps_per_s': batch_size * r * 20 / t})
  return {'convolutions': rows, 'attacks': restarts}


def peak_gflops(seconds: float = 3.0) -> dict:
  """f32 2048×2048 matmul GFLOP/s: on one device, and on every local device at once."""
  one = bench_xla.matmul_peak(seconds=seconds)
  n = jax.local_device_count()
  if n == 1:
    return {'one_device': one, 'all_devices': one}
  a = jax.random.normal(jax.random.key(0), (n, 2048, 2048))
  t = _timed(jax.pmap(jnp.dot), a, a, seconds=seconds)
  return {'one_device': one, 'all_devices': n * 2 * 2048 ** 3 / t / 1e9}


def format_table(out: dict) -> str:
  """The benchmark as a Markdown table, from its JSON record."""
  lines = [header(out),
           f"f32 matmul peak: {out['matmul_peak_gflops']:.1f} GFLOP/s (2048x2048 jnp.dot, "
           f"best of before/after: {out['matmul_peak_gflops_before_after'][0]:.1f}/"
           f"{out['matmul_peak_gflops_before_after'][1]:.1f})", '',
           '| step | images/s | compile s | GFLOP/step | GFLOP/s | share of peak |'
           + (' dense count: GFLOP/step, share |' if 'dense_gflops' in out['steps'][0] else ''),
           '|---|---|---|---|---|---|' + ('---|' if 'dense_gflops' in out['steps'][0] else '')]
  for r in out['steps']:
    line = (f"| {r['name']} | {r['images_per_s']:.1f} | {r['compile_s']:.2f} | "
            f"{r['gflop_per_step']:.2f} | {r['gflops']:.1f} | {100 * r['share_of_peak']:.1f} % |")
    if 'dense_gflops' in r:
      line += (f" {r['dense_gflop_per_step']:.2f}, "
               f"{100 * r['dense_gflops'] / out['matmul_peak_gflops']:.1f} % |")
    lines.append(line)
  return '\n'.join(lines)


def format_layers(out: dict) -> str:
  """The --mode=layers record as Markdown tables."""
  lines = [f"{header(out)}; batch {out['batch_size']}; "
           f"f32 matmul peak {out['matmul_peak_gflops']:.1f} GFLOP/s", '',
           '| layer | part | ms | GFLOP/s |', '|---|---|---|---|']
  lines += [f"| {r['layer']} | {r['part']} | {r['ms']:.2f} | {r['gflops']:.1f} |"
            for r in out['convolutions']]
  lines += ['', '| attack (Madry CNN) | image-steps/s |', '|---|---|']
  lines += [f"| {r['attack']} | {r['image_steps_per_s']:.0f} |" for r in out['attacks']]
  return '\n'.join(lines)
