r"""Figure 7, MNIST ℓ∞: standard accuracy vs training ε on the full training set.

    python -m launch.sweep --sweep=configs/sweeps/figure7_mnist_linf.py
    python -m tradeoff.figures figure7 --results=figures/results/figure7_mnist_linf.json

Same reduced scale as figure6_mnist_linf (grids.reduced_mnist_overrides),
n = 60 000, 1200 steps of batch 128 (2.6 epochs), seed 0. The runs at
ε ∈ {0, 0.1, 0.2, 0.3} are figure6_mnist_linf's and are reused when that sweep
has finished them (same root). A second standard model (seed 1: other
initialisation and data order) is the independently trained model of the
large-ε adversarial-example numbers (python -m tradeoff.figures adversarial).
"""
from launch import grids


def get_config(arg=None):
  del arg
  return grids.eps_sweep('figure7_mnist_linf', 'configs/mnist_linf.py',
                             (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3), seeds=(0,),
                             reuse=('figure6_mnist_linf',),
                             extra_grid=[(('eps', (0.0,)), ('data.train_size', (60000,)),
                                          ('seed', (1,)))])
