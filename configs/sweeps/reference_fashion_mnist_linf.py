r"""Reference models, Fashion-MNIST ℓ∞ ε = 0.1: a standard and an adversarially trained model.

    python -m launch.sweep --sweep=configs/sweeps/reference_fashion_mnist_linf.py
    python -m tradeoff.figures table --results=figures/results/reference_fashion_mnist_linf.json

Both runs use configs/fashion_mnist_linf.py unchanged (the paper-size recipe) except the
training ε: attack.eps = 0 trains the standard model, attack.eps = ε the robust
one. Both are evaluated by the config's evaluation attack at the same ε, so the
table compares them under one threat model.
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep('reference_fashion_mnist_linf', 'configs/fashion_mnist_linf.py', 0.1)
