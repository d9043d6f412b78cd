r"""Reference models, CIFAR-10 ℓ∞ ε = 4/255: a standard and an adversarially trained model.

    python -m launch.sweep --sweep=configs/sweeps/reference_cifar10_linf.py
    python -m tradeoff.figures table --results=figures/results/reference_cifar10_linf.json

Both runs use configs/cifar10_linf.py unchanged (the paper-size recipe) except the
training ε: attack.eps = 0 trains the standard model, attack.eps = ε the robust
one. Both are evaluated by the config's evaluation attack at the same ε, so the
table compares them under one threat model.
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep('reference_cifar10_linf', 'configs/cifar10_linf.py', 4 / 255)
