r"""Figure 6 (ℓ∞), Fashion-MNIST: standard accuracy vs training-set size for ε ∈ {0, 0.05, 0.1, 0.15}.

    python -m launch.sweep --sweep=configs/sweeps/figure6_fashion_mnist_linf.py
    python -m tradeoff.figures figure1 --results=figures/results/figure6_fashion_mnist_linf.json

Reduced scale so one grid fits this 2-core CPU in 90 minutes
(grids.reduced_mnist_overrides): a quarter-width Madry CNN (8/16 conv
channels, 256 hidden), PGD-7 training (step 2.5ε/7, ε ramped over the first
10 %), and every run gets the same budget: 1200 steps of batch 128, or 2 epochs
if that is more (it never is here: 2 epochs of 60 000 are 938 steps). Clean
accuracy is measured on all 10 000 test images; robust accuracy with PGD-20
(step 2.5ε/20, 2 random restarts) on the first 1000.
Sizes ≤ 1000 use 2 seeds (the subset and the training order change).
n ∈ {100, 1000, 60 000}: without the MNIST grids' n = 10 000 (4 runs, ~10 min
here) the grid fits beside the MNIST ones in one working session.
"""

from launch import grids

EPS = (0.0, 0.05, 0.1, 0.15)


def get_config(arg=None):
  del arg
  return grids.size_sweep('figure6_fashion_mnist_linf', 'configs/fashion_mnist_linf.py', EPS,
                              large_sizes=(60000,))
