"""The PyTorch port behind the side-by-side AutoAttack benchmark (tradeoff/bench/reference.py).

The port runs in an optional environment with torch and pyautoattack: the python
named by $TRADEOFF_TORCH_PYTHON, else this one if it has them; without either the
port tests are skipped (torch is never installed by CI).
"""
import importlib.util
import os
import sys

import jax
import numpy as np
import pytest

from tradeoff import configlib
from tradeoff import models
from tradeoff import trained
from tradeoff.bench import reference


def _torch_python():
  path = os.environ.get('TRADEOFF_TORCH_PYTHON')
  if path:
    return path
  if all(importlib.util.find_spec(m) for m in ('torch', 'pyautoattack')):
    return sys.executable
  return None


needs_torch = pytest.mark.skipif(_torch_python() is None, reason='no torch environment '
                                 '($TRADEOFF_TORCH_PYTHON, or torch + pyautoattack here)')


def _export(tmp_path, name, shape, mean, std, **fields):
  cfg = configlib.base_config(dataset='mnist', norm='linf', eps=0.1, model=name).model
  cfg.update(fields)
  module = models.build(cfg, 10, mean, std)
  x = jax.random.uniform(jax.random.key(1), (6,) + shape)
  variables = jax.jit(lambda k, x: module.init(k, x, train=False))(jax.random.key(0), x[:1])
  if 'batch_stats' in variables:   # running statistics that are not the initial 0 / 1
    keys = iter(jax.random.split(jax.random.key(2), 1000))
    variables = {**variables, 'batch_stats': jax.tree.map(
        lambda v: jax.random.uniform(next(keys), v.shape, minval=0.5, maxval=1.5),
        variables['batch_stats'])}
  record = {'model': cfg.to_dict(), 'num_classes': 10, 'num_outputs': 10,
            'normalization': {'mean': list(mean), 'std': list(std),
                              'applied_inside_model': True}}
  out = trained.write_export(str(tmp_path / name), variables, record)
  logits = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x)
  return out, np.asarray(x), np.asarray(logits)


@needs_torch
@pytest.mark.parametrize('name,shape,mean,std,fields', [
    ('linear', (28, 28, 1), (0.13,), (0.31,), {}),
    ('mlp', (28, 28, 1), (0.13,), (0.31,), {'hidden': (32, 16)}),
    ('madry_cnn', (28, 28, 1), (0.13,), (0.31,), {'width': 0.25}),
    ('cifar_resnet', (32, 32, 3), (0.49, 0.48, 0.45), (0.25, 0.24, 0.26),
     {'units': 1, 'widen': 1})])
def test_the_torch_port_computes_the_jax_models_logits(tmp_path, name, shape, mean, std, fields):
  export_dir, x, logits = _export(tmp_path, name, shape, mean, std, **fields)
  ported = reference.torch_logits(_torch_python(), export_dir, x)
  check = reference.port_check(logits, ported)
  assert check['ok'], check
  assert check['relative'] < 1e-5


@needs_torch
def test_a_wrong_port_is_caught(tmp_path):
  export_dir, x, logits = _export(tmp_path, 'madry_cnn', (28, 28, 1), (0.13,), (0.31,),
                                  width=0.25)
  # the same weights on the image transposed: a port that flattened in the wrong order
  # would compute this
  swapped = reference.torch_logits(_torch_python(), export_dir,
                                   np.ascontiguousarray(np.swapaxes(x, 1, 2)))
  assert not reference.port_check(logits, swapped)['ok']


def test_the_comparison_lines_up_stages_and_names_the_points_they_disagree_on():
  mine = {'robust_accuracy': 0.5, 'robust_time_s': 30.0, 'clean_accuracy': 0.75,
          'eval_attack': {'name': 'autoattack', 'norm': 'linf', 'eps': 0.3, 'stages': []},
          'robust_points': '0110',
          'robust_accuracy_by_stage': [
              {'attack': 'apgd_ce', 'robust_accuracy': 0.75, 'wall_time_s': 10.0},
              {'attack': 'apgd_t9', 'robust_accuracy': 0.5, 'wall_time_s': 20.0}]}
  ref = {'robust_accuracy': 0.5, 'time_s': 60.0, 'clean_accuracy': 0.75, 'num_examples': 4,
         'seed': 0, 'torch': '2', 'threads': 2, 'batch_size': 250, 'version': '0.2.0',
         'robust_points': '1100',
         'robust_accuracy_by_stage': [
             {'attack': 'apgd-ce', 'robust_accuracy': 0.5, 'wall_time_s': 40.0},
             {'attack': 'apgd-t', 'robust_accuracy': 0.5, 'wall_time_s': 20.0}]}
  out = reference.compare(mine, ref, {'workdir': 'w', 'norm': 'linf', 'eps': 0.3,
                                      'num_examples': 4})
  assert [s['difference_points'] for s in out['stages']] == [1, 0]
  assert [s['time_ratio'] for s in out['stages']] == [0.25, 1.0]
  assert out['robust_only_under_tradeoff'] == [2]
  assert out['robust_only_under_reference'] == [0]
  assert out['time_ratio'] == 0.5
  text = reference.format_reference({**out, 'tradeoff_autoattack': 'AutoAttack standard'})
  assert '| apgd_t9 | 50.00 % | 50.00 % | +0 |' in text


def test_the_benchmark_without_a_torch_environment_is_one_clear_error(tmp_path):
  from tradeoff import errors
  with pytest.raises(errors.UserError, match='--torch_python'):
    reference.torch_python_or_error(None)
  with pytest.raises(errors.UserError, match='cannot import torch'):
    reference.torch_python_or_error(sys.executable if _torch_python() != sys.executable
                                    else '/bin/false')
