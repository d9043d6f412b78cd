r"""Croce & Hein's own AutoAttack on a PyTorch port of an exported tradeoff model.

Runs in a separate, optional environment that has torch and pyautoattack (the
reference implementation on PyPI) and not tradeoff's JAX stack; it imports
numpy, torch and pyautoattack only, and is run by its path:

    python tradeoff/bench/torch_reference.py logits --export=DIR --images=X.npz --output=OUT.npz
    python tradeoff/bench/torch_reference.py autoattack --export=DIR --images=X.npz \
        --output=OUT.json [--batch_size=250] [--seed=0] [--threads=0]

DIR is `trained.export`'s (variables.npz + model.json); X.npz holds `x`
(f32[N, H, W, C] in [0, 1], tradeoff's layout) and `y` (i32[N]). `logits`
writes the port's logits (to check the port against the JAX model);
`autoattack` runs `AutoAttack(version='standard')` through its own
`run_standard_evaluation` and writes the robust accuracy after every stage
(from the reference's own log lines), each stage's time, which points stay
robust, and the threads and versions used.

The port is exact up to float32 rounding: NCHW inputs (the reference's Square
and FAB assume them) are moved to NHWC before flattening, so dense layers see
flax's order; XLA's SAME padding (asymmetric for strided convolutions) is
written out; BatchNorm uses the exported running statistics.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MODELS = ('linear', 'mlp', 'madry_cnn', 'cifar_resnet')


def _conv_weight(kernel: np.ndarray) -> torch.Tensor:
  """flax HWIO -> torch OIHW."""
  return torch.from_numpy(np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1))))


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
  """XLA's SAME padding of an NCHW tensor: the odd pixel goes after."""
  out = []
  for size in (x.shape[3], x.shape[2]):   # F.pad takes the last dimension first
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    out += [total // 2, total - total // 2]
  return F.pad(x, out)


class Port(torch.nn.Module):
  """An exported tradeoff model as a torch module: NCHW f32 pixels -> logits."""

  def __init__(self, record: dict, arrays: dict):
    super().__init__()
    self.name = record['model']['name']
    if self.name not in MODELS:
      raise SystemExit(f'torch_reference: no PyTorch port of model {self.name!r}; '
                       f'ported: {", ".join(MODELS)}.')
    norm = record['normalization']
    inside = norm.get('applied_inside_model', True)
    mean = norm['mean'] if inside else [0.0]
    std = norm['std'] if inside else [1.0]
    self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
    self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
    self.cfg = record['model']
    self.w = {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in arrays.items()}
    # Convolution kernels in torch's layout, once (not in every forward pass).
    self.conv_w = {k[len('params/'):-len('/kernel')]: _conv_weight(np.asarray(v, np.float32))
                   for k, v in arrays.items() if k.endswith('/kernel') and v.ndim == 4}
    if self.name == 'linear' and self.cfg.get('keep_features'):
      self.keep = torch.tensor(self.cfg['keep_features'], dtype=torch.long)
    else:
      self.keep = None

  def _dense(self, x, scope):
    return x @ self.w[f'params/{scope}/kernel'] + self.w[f'params/{scope}/bias']

  def _conv(self, x, scope, stride=1, bias=True):
    weight = self.conv_w[scope]
    x = _same_pad(x, weight.shape[2], stride)
    b = self.w[f'params/{scope}/bias'] if bias else None
    return F.conv2d(x, weight, b, stride)

  def _bn(self, x, scope):
    mean = self.w[f'batch_stats/{scope}/mean'].view(1, -1, 1, 1)
    var = self.w[f'batch_stats/{scope}/var'].view(1, -1, 1, 1)
    scale = self.w[f'params/{scope}/scale'].view(1, -1, 1, 1)
    bias = self.w[f'params/{scope}/bias'].view(1, -1, 1, 1)
    return (x - mean) * torch.rsqrt(var + 1e-5) * scale + bias

  @staticmethod
  def _flatten(x):
    """flax's order: NCHW -> NHWC -> rows."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1) if x.dim() == 4 else x.reshape(
        x.shape[0], -1)

  def forward(self, x):
    x = (x - self.mean) / self.std
    if self.name == 'linear':
      x = self._flatten(x)
      if self.keep is not None:
        x = x[:, self.keep]
      return self._dense(x, 'dense')
    if self.name == 'mlp':
      x = self._flatten(x)
      for i in range(len(self.cfg['hidden'])):
        x = F.relu(self._dense(x, f'Dense_{i}'))
      return self._dense(x, f'Dense_{len(self.cfg["hidden"])}')
    if self.name == 'madry_cnn':
      x = F.max_pool2d(F.relu(self._conv(x, 'Conv_0')), 2)
      x = F.max_pool2d(F.relu(self._conv(x, 'Conv_1')), 2)
      x = F.relu(self._dense(self._flatten(x), 'Dense_0'))
      return self._dense(x, 'Dense_1')
    return self._cifar_resnet(x)

  def _cifar_resnet(self, x):
    act = lambda z: F.leaky_relu(z, 0.1)
    units, widen = int(self.cfg['units']), int(self.cfg['widen'])
    x = self._conv(x, 'Conv_0', bias=False)
    k = 0
    for group, (filters, stride) in enumerate(((16 * widen, 1), (32 * widen, 2),
                                               (64 * widen, 2))):
      for unit in range(units):
        s = stride if unit == 0 else 1
        scope = f'_ResidualUnit_{k}'
        if group == 0 and unit == 0:
          x = act(self._bn(x, f'{scope}/BatchNorm_0'))
          shortcut = x
        else:
          shortcut = x
          x = act(self._bn(x, f'{scope}/BatchNorm_0'))
        y = self._conv(x, f'{scope}/Conv_0', s, bias=False)
        y = self._conv(act(self._bn(y, f'{scope}/BatchNorm_1')), f'{scope}/Conv_1', 1,
                       bias=False)
        if shortcut.shape[1] != filters:
          shortcut = F.avg_pool2d(shortcut, s, s)
          extra = filters - shortcut.shape[1]
          shortcut = F.pad(shortcut, (0, 0, 0, 0, extra // 2, extra - extra // 2))
        x = y + shortcut
        k += 1
    x = act(self._bn(x, 'BatchNorm_0'))
    return self._dense(x.mean(dim=(2, 3)), 'Dense_0')


def load(export_dir: str) -> Port:
  with open(os.path.join(export_dir, 'model.json')) as f:
    record = json.load(f)
  if int(record.get('num_outputs', record['num_classes'])) != int(record['num_classes']):
    raise SystemExit('torch_reference: AutoAttack needs one logit per class; this model has '
                     f'{record.get("num_outputs")} output(s).')
  with np.load(os.path.join(export_dir, 'variables.npz')) as z:
    arrays = {k: z[k] for k in z.files}
  return Port(record, arrays).eval()


def _images(path: str) -> tuple[torch.Tensor, torch.Tensor]:
  with np.load(path) as z:
    x, y = np.asarray(z['x'], np.float32), np.asarray(z['y'], np.int64)
  return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))), \
      torch.from_numpy(y)


class _Stages(logging.Handler):
  """Collects the reference's own per-stage log lines."""
  PATTERN = re.compile(r'robust accuracy after (\S+): ([\d.]+)% \(total time ([\d.]+) s\)')

  def __init__(self):
    super().__init__(logging.DEBUG)
    self.stages, self.lines = [], []

  def emit(self, record):
    line = record.getMessage()
    self.lines.append(line)
    m = self.PATTERN.search(line)
    if m:
      self.stages.append({'attack': m.group(1).lower(), 'robust_accuracy': float(m.group(2)) / 100,
                          'total_time_s': float(m.group(3))})


def run_autoattack(model: Port, x: torch.Tensor, y: torch.Tensor, norm: str, eps: float,
                   batch_size: int, seed: int) -> dict:
  import pyautoattack  # pylint: disable=g-import-not-at-top
  from pyautoattack import AutoAttack  # pylint: disable=g-import-not-at-top
  handler = _Stages()
  log = logging.getLogger('auto-attack')
  log.setLevel(logging.DEBUG)
  log.addHandler(handler)
  adversary = AutoAttack(model, norm={'linf': 'Linf', 'l2': 'L2'}[norm], eps=eps,
                         version='standard', seed=seed, device='cpu')
  t0 = time.time()
  x_adv, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
  wall = time.time() - t0
  log.removeHandler(handler)
  with torch.no_grad():
    clean_ok = model(x).argmax(1) == y
    adv_ok = model(x_adv).argmax(1) == y
  d = (x_adv - x).reshape(len(x), -1)
  size = d.abs().max(1)[0] if norm == 'linf' else d.norm(dim=1)
  prev = 0.0
  for st in handler.stages:
    st['wall_time_s'], prev = st['total_time_s'] - prev, st['total_time_s']
  return {'implementation': 'pyautoattack', 'version': getattr(pyautoattack, '__version__', None)
          or _dist_version('pyautoattack'), 'torch': torch.__version__,
          'threads': torch.get_num_threads(), 'seed': seed, 'batch_size': batch_size,
          'norm': norm, 'eps': eps, 'num_examples': len(y),
          'attacks': list(adversary.attacks_to_run),
          'clean_accuracy': float(clean_ok.float().mean()),
          'robust_accuracy': float((clean_ok & adv_ok).float().mean()),
          'robust_accuracy_by_stage': handler.stages,
          'robust_points': ''.join('1' if r else '0' for r in (clean_ok & adv_ok).tolist()),
          'max_perturbation': float(size.max()) if len(size) else 0.0,
          'time_s': wall, 'log': handler.lines,
          'python': platform.python_version()}


def _dist_version(name: str) -> str | None:
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    return metadata.version(name)
  except Exception:  # pylint: disable=broad-except
    return None


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('what', choices=('logits', 'autoattack'))
  p.add_argument('--export', required=True)
  p.add_argument('--images', required=True)
  p.add_argument('--output', required=True)
  p.add_argument('--norm', choices=('linf', 'l2'))
  p.add_argument('--eps', type=float)
  p.add_argument('--batch_size', type=int, default=250)
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--threads', type=int, default=0, help='torch threads; 0: torch\'s default')
  args = p.parse_args(argv)
  if args.threads:
    torch.set_num_threads(args.threads)
  model = load(args.export)
  x, y = _images(args.images)
  if args.what == 'logits':
    with torch.no_grad():
      np.savez(args.output, logits=model(x).numpy())
    return 0
  if args.norm is None or args.eps is None:
    p.error('autoattack needs --norm and --eps')
  out = run_autoattack(model, x, y, args.norm, args.eps, args.batch_size, args.seed)
  with open(args.output, 'w') as f:
    json.dump(out, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
