r"""The PGD-k training step in plain JAX, to compare XLA:CPU across JAX versions.

    python -m tradeoff.bench_xla [--output=PATH]

`python -m tradeoff.bench` times tradeoff's own training step, which needs the
JAX/flax versions setup.cfg declares. This module imports only jax and numpy,
so the same computation can be timed under any JAX release, e.g. in a side
environment:

    python -m venv /tmp/jax0431 && /tmp/jax0431/bin/pip install 'jax[cpu]==0.4.31' 'numpy<2.1'
    /tmp/jax0431/bin/python -m tradeoff.bench_xla --output=figures/results/bench_xla_jax0431.json

The step is tradeoff's, written out: the Madry et al. MNIST CNN (5×5 convs
32 and 64 channels, SAME padding, 2×2 max-pool as reshape + max, dense 1024,
dense 10), input normalisation inside the model, ℓ∞ PGD-k (ε = 0.3, step
0.01, uniform random start, sign steps, projection and clipping to [0, 1]) as
an unrolled `lax.fori_loop` behind `stop_gradient`, cross-entropy at the
attack's output and an SGD update, on random inputs of batch 128. FLOPs are
counted from the layer shapes (`step_flops`: convolutions and dense layers,
the same count under every version; XLA's own cost analysis changed between
releases); the f32 matmul peak (2048×2048) is measured in the same process,
as in tradeoff.bench.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

_DN = ('NHWC', 'HWIO', 'NHWC')


def init_params(key):
  k = jax.random.split(key, 4)
  he = lambda kk, shape, fan_in: jax.random.normal(kk, shape) * np.sqrt(2.0 / fan_in)
  return {'c1': he(k[0], (5, 5, 1, 32), 25), 'b1': jnp.zeros(32),
          'c2': he(k[1], (5, 5, 32, 64), 800), 'b2': jnp.zeros(64),
          'd1': he(k[2], (7 * 7 * 64, 1024), 3136), 'e1': jnp.zeros(1024),
          'd2': he(k[3], (1024, 10), 1024), 'e2': jnp.zeros(10)}


def _pool(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def apply(p, x):
  """Logits f32[B, 10] of images f32[B, 28, 28, 1] in [0, 1]."""
  x = (x - 0.1307) / 0.3081
  x = jax.lax.conv_general_dilated(x, p['c1'], (1, 1), 'SAME', dimension_numbers=_DN) + p['b1']
  x = _pool(jax.nn.relu(x))
  x = jax.lax.conv_general_dilated(x, p['c2'], (1, 1), 'SAME', dimension_numbers=_DN) + p['b2']
  x = _pool(jax.nn.relu(x))
  x = jax.nn.relu(x.reshape(x.shape[0], -1) @ p['d1'] + p['e1'])
  return x @ p['d2'] + p['e2']


def _ce(logits, y):
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def pgd_linf(p, x, y, key, num_steps, eps=0.3, step=0.01, random_start=True):
  grad_x = jax.grad(lambda z: _ce(apply(p, z), y))
  x0 = x
  if random_start:
    x0 = jnp.clip(x + jax.random.uniform(key, x.shape, minval=-eps, maxval=eps), 0.0, 1.0)

  def body(_, z):
    z = z + step * jnp.sign(grad_x(z))
    return jnp.clip(jnp.clip(z, x - eps, x + eps), 0.0, 1.0)

  # An int unroll: JAX releases before unroll=True was accepted read it as 1.
  z = jax.lax.fori_loop(0, num_steps, body, x0, unroll=max(1, num_steps))
  return jax.lax.stop_gradient(z)


def step_flops(num_steps: int, batch_size: int) -> float:
  """Multiply-add FLOPs (×2) of one training step with PGD-`num_steps`.

  Forward F per image; a PGD step is a forward and an input gradient of every
  layer (2F); the parameter update is a forward, the weight gradients (F) and
  the input gradients of every layer but the first (F minus conv1's).
  """
  conv1 = 2 * 28 * 28 * 32 * 25
  fwd = conv1 + 2 * 14 * 14 * 64 * 800 + 2 * 3136 * 1024 + 2 * 1024 * 10
  return batch_size * (3 * fwd - conv1 + num_steps * 2 * fwd)


def make_step(num_steps):
  def step(p, x, y, key):
    x_adv = pgd_linf(p, x, y, key, num_steps) if num_steps else x
    loss, g = jax.value_and_grad(lambda q: _ce(apply(q, x_adv), y))(p)
    return jax.tree_util.tree_map(lambda a, b: a - 1e-3 * b, p, g), loss
  return jax.jit(step)


def matmul_peak(n: int = 2048, seconds: float = 3.0) -> float:
  """Best observed f32 GFLOP/s of an n×n by n×n matmul (also tradeoff.bench's peak)."""
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n))
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  best, t_end = float('inf'), time.perf_counter() + seconds
  while time.perf_counter() < t_end:
    t0 = time.perf_counter()
    dot(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best / 1e9


def bench(num_steps, batch_size=128, seconds=10.0):
  key = jax.random.PRNGKey(0)
  p = init_params(key)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((batch_size, 28, 28, 1), np.float32))
  y = jnp.asarray(rng.integers(0, 10, batch_size).astype(np.int32))
  step = make_step(num_steps)
  flops = step_flops(num_steps, batch_size)
  t0 = time.perf_counter()
  p, loss = step(p, x, y, key)
  loss.block_until_ready()
  first = time.perf_counter() - t0
  for _ in range(2):
    p, loss = step(p, x, y, key)
  loss.block_until_ready()
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds or n < 3:
    p, loss = step(p, x, y, key)
    n += 1
  loss.block_until_ready()
  per_step = (time.perf_counter() - t0) / n
  return {'name': f'pgd{num_steps}' if num_steps else 'standard', 'pgd_steps': num_steps,
          'batch_size': batch_size, 'timed_steps': n, 'images_per_s': batch_size / per_step,
          'compile_s': first - per_step, 'gflop_per_step': flops / 1e9,
          'gflops': flops / per_step / 1e9}


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      names = [l.split(':', 1)[1].strip() for l in f if l.startswith('model name')]
    return names[0] if names else platform.processor()
  except OSError:
    return platform.processor()


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--pgd_steps', default='7', help='comma-separated PGD step counts')
  ap.add_argument('--seconds', type=float, default=10.0)
  ap.add_argument('--output', default='')
  args = ap.parse_args(argv)
  peak = matmul_peak()
  rows = [bench(k, seconds=args.seconds)
          for k in [0] + [int(s) for s in args.pgd_steps.split(',') if s]]
  peak = max(peak, matmul_peak())
  for r in rows:
    r['share_of_peak'] = r['gflops'] / peak
  out = {'jax': jax.__version__, 'python': platform.python_version(), 'cpu': _cpu_name(),
         'cpu_count': os.cpu_count(), 'xla_flags': os.environ.get('XLA_FLAGS', ''),
         'matmul_peak_gflops': peak, 'steps': rows}
  print(f"jax {out['jax']} on {out['cpu']} ({out['cpu_count']} cores); "
        f"f32 matmul peak {peak:.1f} GFLOP/s")
  for r in rows:
    print(f"{r['name']:>8}: {r['images_per_s']:7.1f} images/s, {r['gflops']:6.1f} GFLOP/s, "
          f"{100 * r['share_of_peak']:.1f} % of peak, compile {r['compile_s']:.2f} s")
  if args.output:
    os.makedirs(os.path.dirname(args.output) or '.', exist_ok=True)
    with open(args.output, 'w') as f:
      json.dump(out, f, indent=2)
    print(f'wrote {args.output}')


if __name__ == '__main__':
  sys.exit(main())
