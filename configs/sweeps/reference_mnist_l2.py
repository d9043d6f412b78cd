r"""Reference models, MNIST ℓ2 ε = 1.5: a standard and an adversarially trained model.

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_l2.py
    python -m tradeoff.figures table --results=figures/results/reference_mnist_l2.json

Both runs use configs/mnist_l2.py unchanged (the paper-size recipe) except the
training ε: attack.eps = 0 trains the standard model, attack.eps = ε the robust
one. Both are evaluated by the config's evaluation attack at the same ε, so the
table compares them under one threat model.
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep('reference_mnist_l2', 'configs/mnist_l2.py', 1.5)
