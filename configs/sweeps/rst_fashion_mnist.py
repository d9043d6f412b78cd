r"""Robust self-training on Fashion-MNIST ℓ∞ ε = 0.1 (Carmon et al. 2019; Raghunathan et
al. 2020) at the Figure 1/6 sizes where adversarial training costs standard accuracy.

    python -m launch.sweep --sweep=configs/sweeps/rst_fashion_mnist.py
    python -m tradeoff.figures reevaluate --results=figures/results/rst_fashion_mnist.json
    python -m tradeoff.figures rst --results=figures/results/rst_fashion_mnist_autoattack_fast.json

For n ∈ {1000, 10 000} labelled training images: standard training (attack.eps = 0)
and PGD adversarial training on the n (the Fashion-MNIST Figure 6 runs' configs), then adversarial
training on all 60 000 training images, the n with their labels and the rest
labelled by that standard model (data.labelled_size, data.pseudo_label_from).
The reduced MNIST scale (grids.reduced_mnist_overrides), 1200 steps of batch 128
each; every run, the standard ones too, is evaluated at ε = 0.1: robust accuracy
PGD-20 × 2 by the runs, AutoAttack fast after
`python -m tradeoff.figures reevaluate`. Run it with --parallel=1 (the default):
each self-training run needs its teacher finished first.
"""
from launch import grids


def get_config(arg=None):
  del arg
  return grids.rst_sweep('rst_fashion_mnist', 'configs/fashion_mnist_linf.py', 0.1)
