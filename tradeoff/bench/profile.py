r"""Where the benchmarked training step's time goes, op by op, from a profiler trace.

    python -m tradeoff.bench --mode=profile [--pgd_steps=7] \
        --output=figures/results/bench_cpu_profile.json

Runs tradeoff.bench's step (Madry CNN, PGD-k with k the first of --pgd_steps)
a few times under `jax.profiler.trace`, reads the Perfetto trace and adds up
the time of every XLA op per step. An op is labelled by the JAX operation it
was lowered from (the HLO `op_name` metadata, e.g.
`transpose(jvp(MadryCNN))/Conv_0/conv_general_dilated` is the first
convolution's input gradient) and by its output shape; a fusion is labelled by
the convolutions and dots inside it, then by its root. With several devices,
their op times are added (core-milliseconds).
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import tempfile
import time

import jax

from tradeoff.bench import steps as benchmarks

_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = (\(.*?\)|\S+) ([\w\-]+)\((.*)$', re.M)
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_CALLS = re.compile(r'calls=%?([\w.\-]+)')
_COMPUTATION = re.compile(r'^%?([\w.\-]+) \(.*?\) -> .*?\{\n(.*?)\n\}', re.M | re.S)
_WRAPPERS = re.compile(r'(?:jit|pmap)\([^()]*\)/|(?:jvp\(\)|closed_call|shard_map)/')


def _label(shape: str, op: str, rest: str) -> str:
  shape = re.sub(r'\{[^{}]*\}', '', shape)  # drop layouts
  m = _OP_NAME.search(rest)
  return f'{_WRAPPERS.sub("", m.group(1)) if m else op + " (no op_name)"} -> {shape}'


def op_labels(hlo_text: str) -> dict[str, str]:
  """HLO instruction name -> 'op_name -> shape' (or 'opcode (no op_name) -> shape').

  A fusion that contains convolutions or dots is named by them, then by its
  root: e.g. conv2's input gradient fused with the max-pool's backward pass is
  `transpose(jvp(MadryCNN))/Conv_1/conv_general_dilated -> f32[...] + reduce_sum -> ...`.
  """
  heavy = {}  # computation name -> labels of its convolutions and dots
  for comp, body in _COMPUTATION.findall(hlo_text):
    heavy[comp] = [_label(shape, op, rest) for _, shape, op, rest in _INSTRUCTION.findall(body)
                   if op in ('convolution', 'dot')]
  labels = {}
  for name, shape, op, rest in _INSTRUCTION.findall(hlo_text):
    calls = _CALLS.search(rest)
    inner = heavy.get(calls.group(1), []) if calls else []
    own = _label(shape, op, rest)
    labels[name] = ' + '.join(dict.fromkeys(inner + [own]))
  return labels


def aggregate(events: list[dict], labels: dict[str, str], num_steps: int) -> list[dict]:
  """Per label: milliseconds and calls per step, from complete ('X') trace events in µs."""
  ms, calls = collections.Counter(), collections.Counter()
  for e in events:
    if e.get('ph') == 'X' and e.get('name') in labels:
      ms[labels[e['name']]] += e['dur'] / 1e3 / num_steps
      calls[labels[e['name']]] += 1 / num_steps
  total = sum(ms.values())
  return [{'op': k, 'ms_per_step': v, 'calls_per_step': calls[k], 'share': v / total}
          for k, v in ms.most_common()]


def profile_step(num_steps: int, batch_size: int, repeats: int = 5) -> dict:
  """Op-time breakdown of tradeoff.bench's pmapped PGD-`num_steps` step."""
  p_step, rstate, sharded = benchmarks.pmapped(*benchmarks.setup_step(num_steps, batch_size))
  key = jax.random.key(1)
  for _ in range(2):
    rstate, m = p_step(rstate, sharded, key)
  jax.block_until_ready(m)
  labels = op_labels(p_step.lower(rstate, sharded, key).compile().as_text())
  with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    with jax.profiler.trace(d, create_perfetto_trace=True):
      for _ in range(repeats):
        rstate, m = p_step(rstate, sharded, key)
      jax.block_until_ready(m)
    wall = (time.perf_counter() - t0) / repeats
    path = glob.glob(f'{d}/**/*.trace.json.gz', recursive=True)[0]
    with gzip.open(path) as f:
      trace = json.load(f)
  events = trace['traceEvents'] if isinstance(trace, dict) else trace
  ops = aggregate(events, labels, repeats)
  return {'pgd_steps': num_steps, 'batch_size': batch_size, 'repeats': repeats,
          'wall_ms_per_step_traced': 1e3 * wall,
          'op_ms_per_step': sum(o['ms_per_step'] for o in ops), 'ops': ops}


def format_profile(out: dict, top: int = 15) -> str:
  """The --mode=profile record as a Markdown table of its `top` ops."""
  p = out['profile']
  lines = [f"{benchmarks.header(out)}; PGD-{p['pgd_steps']}, "
           f"batch {p['batch_size']}; {p['wall_ms_per_step_traced']:.0f} ms per step traced, "
           f"{p['op_ms_per_step']:.0f} ms of op time (all devices)", '',
           '| op (JAX op_name -> output shape) | ms / step | calls / step | share |',
           '|---|---|---|---|']
  for o in p['ops'][:top]:
    lines.append(f"| `{o['op']}` | {o['ms_per_step']:.1f} | {o['calls_per_step']:.0f} | "
                 f"{100 * o['share']:.1f} % |")
  rest = p['ops'][top:]
  if rest:
    lines.append(f"| {len(rest)} other ops | {sum(o['ms_per_step'] for o in rest):.1f} | | "
                 f"{100 * sum(o['share'] for o in rest):.1f} % |")
  return '\n'.join(lines)
