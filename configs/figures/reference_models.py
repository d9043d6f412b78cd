r"""The models of the accuracy table (`python -m tradeoff.figures reference`).

    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist]
    TFDS_DATA_DIR=<dir with cifar10> python -m tradeoff.figures reference --datasets=cifar10

The spec of Figures 2-4 (configs/figures/robust_models.py) with MNIST's
standard and ℓ∞ models replaced by the full-size ones of

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu.py

(the Madry et al. CNN, 10 epochs of fast adversarial training). MNIST's ℓ2
model stays the reduced-scale one of the Figure 1 sweep; the table's
parameter column tells them apart.
"""
import os

from tradeoff import configlib

SWEEPS = 'runs/sweeps'


def get_config(arg=None):
  del arg
  c = configlib.load(os.path.join(os.path.dirname(__file__), 'robust_models.py'))
  c.mnist.standard = f'{SWEEPS}/reference_mnist_linf_cpu/attack.eps=0'
  c.mnist.robust_linf = f'{SWEEPS}/reference_mnist_linf_cpu/attack.eps=0.3'
  return c
