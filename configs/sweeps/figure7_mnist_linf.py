r"""Figure 7, MNIST ℓ∞: standard accuracy vs training ε on the full training set.

    python -m launch.sweep --sweep=configs/sweeps/figure7_mnist_linf.py
    python -m tradeoff.figures figure7 --results=figures/results/figure7_mnist_linf.json

Same reduced scale as figure6_mnist_linf (configlib.reduced_mnist_overrides),
n = 60 000, 1200 steps of batch 128 (2.6 epochs), 2 seeds.
"""
import ml_collections

from tradeoff import configlib


def get_config(arg=None):
  del arg
  s = ml_collections.ConfigDict()
  s.name = 'figure7_mnist_linf'
  s.base = 'configs/mnist_linf.py'
  s.overrides = configlib.reduced_mnist_overrides()
  s.grid = [(('eps', (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)), ('data.train_size', (60000,)),
             ('seed', (0, 1)))]
  s.budget = {'steps': 1200, 'min_epochs': 2}
  return s
