r"""Throughput of the training step, against this machine's matmul peak.

    python -m tradeoff.bench [--batch_size=128] [--pgd_steps=7,40] [--output=figures/results/bench.json]
    python -m tradeoff.bench --mode=layers --output=figures/results/bench_cpu_layers.json
    python -m tradeoff.bench --mode=profile --output=figures/results/bench_cpu_profile.json
    python -m tradeoff.bench --mode=attacks --workdir=<robust run> --output=figures/results/bench_attacks.json
    python -m tradeoff.bench --mode=autoattack_reference --workdir=<robust run> \
        --torch_python=<python with torch + pyautoattack> --num_examples=500 --output=...
    python -m tradeoff.bench --mode=loop --batch_size=128 --width=0.5 --output=figures/results/bench_loop_cpu.json
    python -m tradeoff.bench --mode=pipeline --output=figures/results/bench_imagenet_pipeline.json
    python -m tradeoff.bench --mode=resnet --batch_size=8 --output=figures/results/bench_resnet50.json
    python -m tradeoff.bench --mode=processes --output=figures/results/bench_processes_cpu.json
    python -m tradeoff.bench --show=figures/results/bench_cpu.json     # print a stored result

Times the real pmapped train step (Madry et al. MNIST CNN, batch 128, ℓ∞
ε = 0.3) for standard training and for PGD-k adversarial training, after
warm-up, on random inputs (no dataset needed). FLOPs per step come from
XLA:CPU's cost analysis of the same step, on every platform (on GPU, XLA's own
count leaves out cuDNN's convolutions). XLA counts only the multiply-adds that
touch real pixels, not SAME padding's zeros; the dense count of the layer
shapes (`bench_xla.step_flops`, the usual model-FLOPs convention) is 12.6 %
higher and is reported beside it. The f32 matmul peak is measured in the same
process (2048×2048 jnp.dot, on one device and on all devices at once; the
larger), so the share of peak compares like with like.

--mode=attacks times evaluation attacks instead: AutoAttack standard against
PGD-100 × 5 on one trained checkpoint (tradeoff/bench/attacks.py).

--mode=autoattack_reference runs tradeoff's AutoAttack standard and Croce &
Hein's reference (pyautoattack, in a separate torch environment, on a PyTorch
port of the same weights) on the same images (tradeoff/bench/reference.py).

--mode=pipeline and --mode=resnet time Restricted ImageNet's input pipeline
at 224 px and the ImageNet ResNet-50 training step (standard and PGD-k, f32
and bf16), so the two can be compared per host (tradeoff/bench/imagenet.py).
"""
from __future__ import annotations

import json
import os

from absl import flags

from tradeoff import cli
from tradeoff import errors
from tradeoff import provenance
from tradeoff import workdir as workdir_lib
from tradeoff.bench import attacks as bench_attacks
from tradeoff.bench import imagenet as bench_imagenet
from tradeoff.bench import loop as bench_loop
from tradeoff.bench import processes as bench_processes
from tradeoff.bench import profile as bench_profile
from tradeoff.bench import records
from tradeoff.bench import reference as bench_reference
from tradeoff.bench import steps as benchmarks

_BATCH = flags.DEFINE_integer('batch_size', 128, 'Global batch size.')
_STEPS = flags.DEFINE_list('pgd_steps', ['7', '40'], 'PGD step counts to benchmark.')
_SECONDS = flags.DEFINE_float('seconds', 10.0, 'Minimum timed seconds per configuration.')
_OUTPUT = flags.DEFINE_string('output', 'figures/results/bench.json', 'JSON output path.')
_SHOW = flags.DEFINE_string('show', None, 'Print the table of an existing bench JSON and exit.')
_MODE = flags.DEFINE_enum('mode', 'steps', ['steps', 'layers', 'profile', 'attacks',
                                            'autoattack_reference', 'loop', 'pipeline',
                                            'resnet',
                                            'processes', 'processes_worker'],
                          'steps: the training steps; layers: each conv layer alone (forward / '
                          'input gradient / kernel gradient) and PGD restarts; profile: the '
                          'PGD-k step (first of --pgd_steps) op by op from a profiler trace; '
                          'attacks: AutoAttack standard vs PGD-100 x 5 on --workdir; '
                          'autoattack_reference: tradeoff\'s AutoAttack vs the reference '
                          '(pyautoattack, --torch_python) on --workdir; loop: an attack\'s '
                          'gradient loop rolled / unrolled / from Python (tradeoff/bench/loop.py); '
                          'pipeline: the streaming ImageNet input pipeline at 224 px; resnet: '
                          'the ImageNet ResNet training step, f32 and bf16; processes: the '
                          'PGD-7 step on 1 process vs 2 processes (multi-process cost).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', 1, 'processes_worker: internal.')
_PROCESS_ID = flags.DEFINE_integer('process_id', 0, 'processes_worker: internal.')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'processes_worker: internal.')
_THREADS = flags.DEFINE_list('threads', ['1', '2'], 'pipeline: decoding thread counts to time.')
_DEPTH = flags.DEFINE_integer('depth', 50, 'resnet: ImageNet ResNet depth.')
_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'resnet: compute dtypes.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'attacks: the trained run to attack.')
_TORCH_PYTHON = flags.DEFINE_string('torch_python', None, 'autoattack_reference: the python '
                                    'of an environment with torch and pyautoattack.')
_REF_BATCH = flags.DEFINE_integer('reference_batch_size', 250, 'autoattack_reference: the '
                                  'reference\'s batch (its default, 250).')
_WIDTH = flags.DEFINE_float('width', 0.5, 'loop: Madry CNN width.')
_EXAMPLES = flags.DEFINE_integer('num_examples', 1000, 'attacks: first N test images; '
                                 'pipeline: stand-in images per split.')


def main(argv):
  del argv
  if _SHOW.value:
    print(records.format_record(workdir_lib.read_json(_SHOW.value)))
    return
  if _MODE.value == 'attacks':
    if not _WORKDIR.value:
      raise errors.UserError('--mode=attacks needs --workdir=<a trained robust run>.')
    out = {**_provenance(), **bench_attacks.attack_cost(_WORKDIR.value, _EXAMPLES.value)}
    print(bench_attacks.format_attack_cost(out))
    _write(out)
    return
  if _MODE.value == 'autoattack_reference':
    if not _WORKDIR.value:
      raise errors.UserError('--mode=autoattack_reference needs --workdir=<a trained robust run>.')
    out = {**_provenance(), **bench_reference.autoattack_reference(
        _WORKDIR.value, _EXAMPLES.value, _TORCH_PYTHON.value, _REF_BATCH.value)}
    print(bench_reference.format_reference(out))
    _write(out)
    return
  if _MODE.value == 'loop':
    out = {**_provenance(), **bench_loop.gradient_loop(_BATCH.value, _WIDTH.value)}
    print(bench_loop.format_loop(out))
    _write(out)
    return
  if _MODE.value == 'processes_worker':
    print(json.dumps(bench_processes.worker(
        _NUM_PROCESSES.value, _PROCESS_ID.value, _COORDINATOR.value, _BATCH.value,
        int(_STEPS.value[0]), _SECONDS.value)))
    return
  if _MODE.value == 'processes':
    out = {**_provenance(), **bench_processes.compare(_BATCH.value, int(_STEPS.value[0]),
                                                      _SECONDS.value)}
    print(bench_processes.format_compare(out))
    _write(out)
    return
  if _MODE.value == 'pipeline':
    out = {**_provenance(), **bench_imagenet.pipeline_throughput(
        num_images=_EXAMPLES.value, threads=[int(t) for t in _THREADS.value],
        batch_size=_BATCH.value, seconds=_SECONDS.value)}
    print(bench_imagenet.format_pipeline(out))
    _write(out)
    return
  if _MODE.value == 'resnet':
    out = {**_provenance(), **bench_imagenet.resnet_step(
        _DEPTH.value, _BATCH.value, [0] + [int(s) for s in _STEPS.value], _DTYPES.value,
        seconds=_SECONDS.value)}
    print(bench_imagenet.format_resnet(out))
    _write(out)
    return
  if _MODE.value == 'profile':
    out = {**_provenance(),
           'profile': bench_profile.profile_step(int(_STEPS.value[0]), _BATCH.value)}
    print(bench_profile.format_profile(out))
    _write(out)
    return
  if _MODE.value == 'layers':
    peak = max(benchmarks.peak_gflops().values())
    out = {**_provenance(), 'batch_size': _BATCH.value, 'matmul_peak_gflops': peak,
           **benchmarks.bench_layers(_BATCH.value, min(_SECONDS.value, 3.0))}
    print(benchmarks.format_layers(out))
    _write(out)
    return
  peak = benchmarks.peak_gflops()
  rows = []
  for k in [0] + [int(s) for s in _STEPS.value]:
    rows.append(benchmarks.bench_step(k, _BATCH.value, _SECONDS.value))
  peak_after = benchmarks.peak_gflops()
  out = {**_provenance(), 'model': 'madry_cnn', 'dtype': 'float32', 'norm': 'linf', 'eps': 0.3,
         'matmul_peak_gflops': max(*peak.values(), *peak_after.values()),
         'matmul_peak_gflops_before_after': [max(peak.values()), max(peak_after.values())],
         'matmul_peak_gflops_detail': {'before': peak, 'after': peak_after}, 'steps': rows}
  for r in rows:
    r['share_of_peak'] = r['gflops'] / out['matmul_peak_gflops']
  print(benchmarks.format_table(out))
  _write(out)


def _provenance() -> dict:
  """What every record holds: its kind (the mode that wrote it), device, host, code."""
  return {'kind': _MODE.value,
          'device': provenance.device_description(), 'host': provenance.host(),
          'commit': provenance.git_commit(),
          'versions': provenance.versions(), 'xla_flags': os.environ.get('XLA_FLAGS', '')}


def _write(out: dict) -> None:
  if _OUTPUT.value:
    workdir_lib.write_json(_OUTPUT.value, out)
    print(f'wrote {_OUTPUT.value}')


if __name__ == '__main__':
  cli.run(main)
