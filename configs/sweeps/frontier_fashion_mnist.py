r"""The standard-vs-robust frontier on Fashion-MNIST ℓ∞ ε = 0.1: PGD adversarial
training over its training ε against TRADES over β.

    python -m launch.sweep --sweep=configs/sweeps/frontier_fashion_mnist.py
    python -m tradeoff.figures reevaluate --results=figures/results/frontier_fashion_mnist.json
    python -m tradeoff.figures frontier \
        --results=figures/results/frontier_fashion_mnist_autoattack_fast.json

As configs/sweeps/frontier_mnist.py at Fashion-MNIST's ε = 0.1: PGD-AT at
training ε ∈ {0, 0.02, …, 0.1}, TRADES at ε = 0.1 with β ∈ {0.1, 0.5, 1, 3, 6, 12}.
"""
from launch import grids

TRAIN_EPS = (0.0, 0.02, 0.04, 0.06, 0.08, 0.1)
BETAS = (0.1, 0.5, 1.0, 3.0, 6.0, 12.0)


def get_config(arg=None):
  del arg
  return grids.frontier_sweep('frontier_fashion_mnist', 'configs/fashion_mnist_linf.py',
                              TRAIN_EPS, BETAS)
