r"""Figure 7, CIFAR-10 (approximate copy) ℓ∞: standard accuracy vs training ε at n = 50 000.

    TFDS_DATA_DIR=<dir with cifar10> python -m launch.sweep --sweep=configs/sweeps/figure7_cifar10_linf.py
    python -m tradeoff.figures figure7 --results=figures/results/figure7_cifar10_linf.json

The scale of figure6_cifar10_linf (ResNet-8, single-step training attack,
800 steps of batch 128 = 2 epochs, PGD-20 × 2 evaluation on 500 test
images); its runs at ε ∈ {0, 4/255} are reused when that sweep has finished
them (same root).
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    'figure6_cifar10_linf', os.path.join(os.path.dirname(__file__), 'figure6_cifar10_linf.py'))
_figure6 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_figure6)


def get_config(arg=None):
  s = _figure6.get_config(arg)
  s.name = 'figure7_cifar10_linf'
  s.grid = [(('eps', (0.0, 2 / 255, 4 / 255, 8 / 255)), ('data.train_size', (50000,)),
             ('seed', (0,)))]
  s.reuse = ('figure6_cifar10_linf',)
  return s
