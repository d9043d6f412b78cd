r"""The models of the accuracy table (`python -m tradeoff.figures reference`).

    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist]
    TFDS_DATA_DIR=<dir with cifar10> python -m tradeoff.figures reference --datasets=cifar10

The spec of Figures 2-4 (configs/figures/robust_models.py) with MNIST's
standard model replaced by the full-size one of

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu.py

(the Madry et al. CNN, 10 epochs). That sweep's ℓ∞ model, trained with
single-step attacks, overfitted catastrophically (robust accuracy 0 under
PGD-100; README: Reference models), so MNIST's robust models stay the
reduced-scale ones of the Figure 6 and Figure 1 sweeps; the table's
parameter column tells the sizes apart.
"""
import os

from tradeoff import configlib

SWEEPS = 'runs/sweeps'


def get_config(arg=None):
  del arg
  c = configlib.load(os.path.join(os.path.dirname(__file__), 'robust_models.py'))
  c.mnist.standard = f'{SWEEPS}/reference_mnist_linf_cpu/attack.eps=0'
  return c
