r"""Restricted ImageNet, ℓ2 ε = 1: the models of Figures 2-4 and the reference table (accelerators).

    TFDS_DATA_DIR=<dir with imagenet2012 as ArrayRecord> \
        python -m launch.sweep --sweep=configs/sweeps/reference_restricted_imagenet_l2.py
    python -m tradeoff.figures gradients --datasets=restricted_imagenet
    python -m tradeoff.figures reference --datasets=restricted_imagenet

configs/restricted_imagenet_l2.py unchanged (ResNet-50, 224 px, the paper's
ε, 150 epochs) except the training ε: attack.eps = 0 trains the standard model,
attack.eps = 1 the robust one; a second standard model (seed 1) judges
Figure 3's large-ε examples. Each run is about 150 epochs of 257 000 images:
see README, "Restricted ImageNet", for the time per epoch.
"""

from launch import grids


def get_config(arg=None):
  del arg
  s = grids.reference_sweep('reference_restricted_imagenet_l2',
                            'configs/restricted_imagenet_l2.py', 1.0)
  s.grid = list(s.grid) + [(('attack.eps', (0.0,)), ('seed', (1,)))]
  return s
