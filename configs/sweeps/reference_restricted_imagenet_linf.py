r"""Restricted ImageNet, ℓ∞ ε = 0.005: a standard and an adversarially trained model (accelerators).

    TFDS_DATA_DIR=<dir with imagenet2012 as ArrayRecord> \
        python -m launch.sweep --sweep=configs/sweeps/reference_restricted_imagenet_linf.py

configs/restricted_imagenet_linf.py unchanged except the training ε (0: standard).
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep('reference_restricted_imagenet_linf',
                               'configs/restricted_imagenet_linf.py', 0.005)
