r"""The models of the accuracy table (`python -m tradeoff.figures reference`).

    python -m tradeoff.figures reference [--datasets=mnist,fashion_mnist]
    TFDS_DATA_DIR=<dir with cifar10> python -m tradeoff.figures reference --datasets=cifar10

The spec of Figures 2-4 (configs/figures/robust_models.py) with MNIST's
standard model replaced by the full-size one of

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu.py

(the Madry et al. CNN, 10 epochs), and MNIST's ℓ∞ robust model replaced by the
full-size one trained with PGD-7 for 10 epochs:

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu_pgd7.py

(the single-step ℓ∞ model of reference_mnist_linf_cpu overfitted
catastrophically, and the PGD-3 one of reference_mnist_linf_cpu_pgd3 reached
only 82 % under PGD-100; docs/results.md: Reference models). MNIST's ℓ2 robust model stays
the reduced-scale one of the Figure 1 sweep; the table's parameter column
tells the sizes apart.
"""
import os

from launch import grids
from tradeoff import configlib


def get_config(arg=None):
  del arg
  c = configlib.load(os.path.join(os.path.dirname(__file__), 'robust_models.py'))
  c.mnist.standard = grids.workdir_of('configs/sweeps/reference_mnist_linf_cpu.py',
                                      **{'attack.eps': 0.0})
  c.mnist.robust_linf = grids.workdir_of('configs/sweeps/reference_mnist_linf_cpu_pgd7.py',
                                         **{'attack.eps': 0.3})
  return c
