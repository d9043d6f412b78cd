"""The cost of running as several JAX processes: the same training step and global
batch on one process with all devices, and on N processes with a share each.

Each configuration starts fresh processes (`python -m tradeoff.bench
--mode=processes_worker ...`) on this host, CPU backend, with the gloo
collectives and a coordinator on 127.0.0.1, as tests/test_multiprocess.py
does: the step is the Madry et al. MNIST CNN with PGD-7 (bench/steps.py), so the
gradients all-reduced every step are its 3.3 M parameters. Process 0 reports the
time to start the distributed runtime and the step's images/s.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import jax

from tradeoff import distributed
from tradeoff.bench import steps as bench_steps


def worker(num_processes: int, process_id: int, coordinator: str, batch_size: int,
           pgd_steps: int, seconds: float) -> dict:
  t0 = time.time()
  if num_processes > 1:
    distributed.initialize(coordinator, num_processes, process_id)
  init_s = time.time() - t0
  local = batch_size // num_processes
  loss_fn, ctx, state, batch = bench_steps.setup_step(pgd_steps, local)
  p_step, rstate, sharded = bench_steps.pmapped(loss_fn, ctx, state, batch)
  timing = bench_steps.time_step(p_step, rstate, sharded, seconds)
  return {'num_processes': num_processes, 'devices_per_process': jax.local_device_count(),
          'global_batch': batch_size, 'pgd_steps': pgd_steps, 'init_s': init_s, **timing,
          'images_per_s': batch_size / timing['seconds_per_step']}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def run(num_processes: int, devices_per_process: int, batch_size: int, pgd_steps: int,
        seconds: float) -> dict:
  env = {**os.environ,
         'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices_per_process}'}
  port = _free_port()
  t0 = time.time()
  procs = [subprocess.Popen(
      [sys.executable, '-m', 'tradeoff.bench', '--mode=processes_worker',
       f'--num_processes={num_processes}', f'--process_id={i}',
       f'--coordinator_address=127.0.0.1:{port}', f'--batch_size={batch_size}',
       f'--pgd_steps={pgd_steps}', f'--seconds={seconds}'],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(num_processes)]
  outs = [p.communicate(timeout=1800) for p in procs]
  for p, (_, err) in zip(procs, outs):
    if p.returncode:
      raise RuntimeError(f'worker failed: {err[-2000:]}')
  result = json.loads(outs[0][0].strip().splitlines()[-1])
  result['processes_wall_s'] = time.time() - t0
  return result


def compare(batch_size: int = 128, pgd_steps: int = 7, seconds: float = 10.0,
            devices: int = 2) -> dict:
  rows = [run(1, devices, batch_size, pgd_steps, seconds),
          run(devices, 1, batch_size, pgd_steps, seconds)]
  return {'step': f'madry_cnn pgd{pgd_steps}', 'global_batch': batch_size, 'runs': rows,
          'multi_over_single_images_per_s': rows[1]['images_per_s'] / rows[0]['images_per_s']}


def format_compare(out: dict) -> str:
  lines = [bench_steps.header(out),
           f"{out['step']}, global batch {out['global_batch']}, gloo collectives on localhost",
           '', '| processes × devices | images/s | s/step | distributed runtime start s |',
           '|---|---|---|---|']
  lines += [f"| {r['num_processes']} × {r['devices_per_process']} | {r['images_per_s']:.1f} | "
            f"{r['seconds_per_step']:.3f} | {r['init_s']:.2f} |" for r in out['runs']]
  lines.append(f"\n{out['runs'][1]['num_processes']} processes reach "
               f"{100 * out['multi_over_single_images_per_s']:.0f} % of one process's images/s.")
  return '\n'.join(lines)
