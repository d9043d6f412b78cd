"""An attack's gradient loop on the Madry CNN: rolled, unrolled and from Python, with
the models' convolution and with flax's plain one.

    python -m tradeoff.bench --mode=loop [--batch_size=128] [--width=0.5] \
        --output=figures/results/bench_loop_cpu.json

K signed-gradient steps on random inputs and random weights, each way: in one
`lax.fori_loop` (how APGD, FAB and rolled PGD run), the same loop unrolled, and
one jitted step called K times from Python. Plain `nn.Conv` (JAX's own input
gradient, whose swapped-kernel layout XLA:CPU kept out of its fast path inside
loops) against `models.Conv` (the kernel transposed beforehand,
models.conv_general_dilated). Reported: milliseconds per gradient per image.
"""
from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tradeoff import labels
from tradeoff import models
from tradeoff import objectives

WAYS = ('rolled', 'unrolled', 'python')


def gradient_loop(batch_size: int = 128, width: float = 0.5, steps: int = 20,
                  repeats: int = 3) -> dict:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((batch_size, 28, 28, 1)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, batch_size), jnp.int32)
  rows = []
  for conv_name, conv in (('nn.Conv', nn.Conv), ('models.Conv', models.Conv)):
    saved, models.Conv = models.Conv, conv   # the module looks its convolution up when called
    try:
      module = models.MadryCNN(num_outputs=10, width=width)
      params = jax.jit(module.init)(jax.random.key(0), x[:1])
      grad = jax.grad(lambda p, z: jnp.sum(objectives.cross_entropy(module.apply(p, z), y)),
                      argnums=1)
      step = lambda p, z: jnp.clip(z + 0.01 * jnp.sign(grad(p, z)), 0.0, 1.0)
      fns = {'rolled': jax.jit(lambda p, z: jax.lax.fori_loop(
                 0, steps, lambda i, z: step(p, z), z)),
             'unrolled': jax.jit(lambda p, z: jax.lax.fori_loop(
                 0, steps, lambda i, z: step(p, z), z, unroll=True)),
             'python': jax.jit(step)}
      row = {'convolution': conv_name}
      for way in WAYS:
        calls = steps if way == 'python' else 1
        fns[way](params, x).block_until_ready()   # compile
        best = np.inf
        for _ in range(repeats):
          t0, z = time.perf_counter(), x
          for _ in range(calls):
            z = fns[way](params, z)
          z.block_until_ready()
          best = min(best, time.perf_counter() - t0)
        row[way] = best / steps / batch_size * 1e3
      rows.append(row)
    finally:
      models.Conv = saved
  return {'model': 'madry_cnn', 'width': width, 'batch_size': batch_size, 'steps': steps,
          'repeats': repeats, 'unit': 'ms per gradient per image (best of repeats)',
          'rows': rows}


def format_loop(out: dict) -> str:
  head = (f"Madry CNN width {out['width']}, batch {out['batch_size']}, {out['steps']} steps; "
          f"{out['unit']}\n")
  return head + loop_table(out)


def loop_table(out: dict) -> str:
  """Milliseconds per gradient per image, by convolution and way of looping."""
  return labels.markdown(['convolution', *WAYS],
                         [[r['convolution'], *(f'{r[w]:.3f}' for w in WAYS)]
                          for r in out['rows']])
