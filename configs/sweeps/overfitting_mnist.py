r"""Robust overfitting on MNIST ℓ∞ ε = 0.3 (Rice, Wong & Kolter 2020), at CPU scale.

    python -m launch.sweep --sweep=configs/sweeps/overfitting_mnist.py
    python -m tradeoff.figures overfitting --results=figures/results/overfitting_mnist.json

The reduced MNIST scale (grids.reduced_mnist_overrides: quarter-width Madry CNN,
PGD-7 training, PGD-20 × 2 evaluation) trained far past convergence on small
training sets, where overfitting shows first: n = 2000 for 60 epochs and
n = 10 000 for 30, Adam 1e-3 with the learning rate ×0.1 at 50 % and 75 % of
training (the piecewise schedule under which Rice et al. saw robust test
accuracy peak right after the first decay and then fall). 1000 training
examples are held out for validation (class-balanced, seed 0) and the
checkpoint with the best validation robust accuracy is kept; every 2 epochs
the run attacks the validation set, the first 1000 training examples and the
first 1000 test images.
"""
from launch import grids


def get_config(arg=None):
  del arg
  s = grids.eps_sweep('overfitting_mnist', 'configs/mnist_linf.py', (0.3,))
  s.overrides = s.overrides + (('optim.schedule', 'piecewise'),
                               ('data.validation_size', 1000),
                               ('eval_train_examples', 1000))
  s.budget = {}
  s.grid = [(('data.train_size', (2000,)), ('num_epochs', (60.0,)), ('eval_every', (32,))),
            (('data.train_size', (10000,)), ('num_epochs', (30.0,)), ('eval_every', (157,)))]
  return s
