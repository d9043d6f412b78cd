r"""Figure 7, Fashion-MNIST ℓ∞: standard accuracy vs training ε on the full training set.

    python -m launch.sweep --sweep=configs/sweeps/figure7_fashion_mnist_linf.py
    python -m tradeoff.figures figure7 --results=figures/results/figure7_fashion_mnist_linf.json

Same reduced scale as figure6_fashion_mnist_linf, n = 60 000, one seed: the
runs at ε ∈ {0, 0.05, 0.1, 0.15} are that sweep's and are reused. A second
standard model (seed 1) is the independently trained model of the large-ε
adversarial-example numbers (python -m tradeoff.figures adversarial).
"""
from launch import grids


def get_config(arg=None):
  del arg
  return grids.eps_sweep(
      'figure7_fashion_mnist_linf', 'configs/fashion_mnist_linf.py',
      (0.0, 0.05, 0.1, 0.15), seeds=(0,), reuse=('figure6_fashion_mnist_linf',),
      extra_grid=[(('eps', (0.0,)), ('data.train_size', (60000,)), ('seed', (1,)))])
