r"""Randomized smoothing on MNIST: base classifiers trained with Gaussian noise
σ ∈ {0.12, 0.25, 0.5, 1.0} (Cohen et al. 2019), then certified.

    python -m launch.sweep --sweep=configs/sweeps/smoothing_mnist.py
    python -m tradeoff.figures smoothing --results=figures/results/smoothing_mnist.json

The reduced MNIST scale of the Figure 1/6/7 sweeps (grids.reduced_mnist_overrides:
a quarter-width Madry CNN, 1200 steps of batch 128 on all 60 000 images),
trained with `loss.name=gaussian_augment` (cross-entropy on x + σε, no attack;
attack.eps = 0). The base classifier's own robust accuracy is still measured
under the ℓ2 ε = 1.5 PGD-20 × 2 of configs/mnist_l2.py, beside the smoothed
classifier's certificates.
"""
from launch import grids

SIGMAS = (0.12, 0.25, 0.5, 1.0)


def get_config(arg=None):
  del arg
  s = grids.eps_sweep('smoothing_mnist', 'configs/mnist_l2.py', (1.5,))
  s.overrides = s.overrides + (('loss.name', 'gaussian_augment'), ('attack.eps', 0.0))
  s.grid = [(('loss.sigma', SIGMAS), ('data.train_size', (60000,)), ('seed', (0,)))]
  return s
