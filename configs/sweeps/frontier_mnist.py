r"""The standard-vs-robust frontier on MNIST ℓ∞ ε = 0.3: PGD adversarial training
over its training ε against TRADES over β.

    python -m launch.sweep --sweep=configs/sweeps/frontier_mnist.py
    python -m tradeoff.figures reevaluate --results=figures/results/frontier_mnist.json
    python -m tradeoff.figures frontier --results=figures/results/frontier_mnist_autoattack_fast.json

The reduced MNIST scale of Figures 1/6/7 (grids.reduced_mnist_overrides:
quarter-width Madry CNN, PGD-7 training with step 2.5ε/7 — the same attack
maximises TRADES's KL term — 1200 steps of batch 128 on all 60 000 images).
PGD-AT at training ε ∈ {0, 0.05, …, 0.3}; TRADES (Zhang et al. 2019) at ε = 0.3
with β ∈ {0.1, 0.5, 1, 3, 6, 12}. Every model is evaluated at ε = 0.3 (PGD-20 × 2
by the run, then AutoAttack fast by `reevaluate`) on the first 1000 test images.
"""
from launch import grids

TRAIN_EPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
BETAS = (0.1, 0.5, 1.0, 3.0, 6.0, 12.0)


def get_config(arg=None):
  del arg
  return grids.frontier_sweep('frontier_mnist', 'configs/mnist_linf.py', TRAIN_EPS, BETAS)
