r"""Figure 1 (ℓ2), Restricted ImageNet: standard accuracy vs training-set size (accelerators).

    TFDS_DATA_DIR=<dir with imagenet2012 as ArrayRecord> \
        python -m launch.sweep --sweep=configs/sweeps/figure1_restricted_imagenet_l2.py
    python -m tradeoff.figures figure1 --results=figures/results/figure1_restricted_imagenet_l2.json

configs/restricted_imagenet_l2.py (ResNet-50, 224 px, 150 epochs of each run's
own training set) for training ε ∈ {0, 0.5, 1} and class-balanced subsets of
2 500, 10 000 and 50 000 images; the full-set points (about 257 000 images)
are the runs of reference_restricted_imagenet_l2.py at ε 0 and 1. Standard
accuracy is on the whole validation-split test set.
"""

from launch import grids

EPS = (0.0, 0.5, 1.0)
SIZES = (2500, 10000, 50000)


def get_config(arg=None):
  del arg
  s = grids.size_sweep('figure1_restricted_imagenet_l2', 'configs/restricted_imagenet_l2.py',
                       EPS, large_sizes=SIZES)
  s.overrides = ()
  s.grid = [(('eps', EPS), ('data.train_size', SIZES), ('seed', (0,)))]
  s.budget = {}
  return s
