r"""Reference models, CIFAR-10 ℓ2 ε = 0.314: a standard and an adversarially trained model.

    python -m launch.sweep --sweep=configs/sweeps/reference_cifar10_l2.py
    python -m tradeoff.figures table --results=figures/results/reference_cifar10_l2.json

Both runs use configs/cifar10_l2.py unchanged (the paper-size recipe) except the
training ε: attack.eps = 0 trains the standard model, attack.eps = ε the robust
one. Both are evaluated by the config's evaluation attack at the same ε, so the
table compares them under one threat model.
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep('reference_cifar10_l2', 'configs/cifar10_l2.py', 0.314)
