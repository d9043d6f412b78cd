r"""The standard-vs-robust frontier on the §2 distribution, against Theorem 2.1.

    python -m launch.sweep --sweep=configs/sweeps/frontier_synthetic.py
    python -m tradeoff.figures frontier --results=figures/results/frontier_synthetic.json

configs/theory_mlp.py (p = 0.9, d = 1000, η = 3/√d; a 64-64 MLP, evaluated at
ε = 2η by PGD-50 × 3 with the margin loss on a stratified test set): PGD-AT at
training ε ∈ {0, 0.25, 0.5, 1, 1.5, 2}·η and TRADES at ε = 2η with
β ∈ {0.1, 0.5, 1, 3, 6, 12}, 10 epochs each. The figure draws the bound
robust ≤ p/(1−p)·(1 − standard) = 9·δ that no classifier can beat.
"""
import math

from launch import grids

ETA = 3 / math.sqrt(1000)
TRAIN_EPS = tuple(f * ETA for f in (0.0, 0.25, 0.5, 1.0, 1.5, 2.0))
BETAS = (0.1, 0.5, 1.0, 3.0, 6.0, 12.0)


def get_config(arg=None):
  del arg
  return grids.frontier_sweep('frontier_synthetic', 'configs/theory_mlp.py', TRAIN_EPS, BETAS,
                              overrides=(), budget={})
