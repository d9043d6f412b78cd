"""ImageNet-1k and Restricted ImageNet (Tsipras et al. 2019): classes and statistics.

Restricted ImageNet keeps the ImageNet classes of nine superclasses, given as
inclusive ranges of ImageNet-1k label indices (the robustness library's
RESTRICTED_IMAGNET_RANGES, in its order), and relabels them 0–8; every other
class is dropped. Its training set comes from ImageNet's train split, its test
set from the validation split.
"""
from __future__ import annotations

import numpy as np

NUM_IMAGENET_CLASSES = 1000

# (superclass, first ImageNet label, last ImageNet label), label = position.
RESTRICTED_RANGES = (('dog', 151, 268), ('cat', 281, 285), ('frog', 30, 32),
                     ('turtle', 33, 37), ('bird', 80, 100), ('primate', 365, 382),
                     ('fish', 389, 397), ('crab', 118, 121), ('insect', 300, 319))
RESTRICTED_CLASS_NAMES = tuple(name for name, _, _ in RESTRICTED_RANGES)

# Per-channel statistics of [0, 1] pixels the robustness library normalises with.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
RESTRICTED_MEAN, RESTRICTED_STD = (0.4717, 0.4499, 0.3837), (0.2600, 0.2516, 0.2575)


def restricted_label_table() -> np.ndarray:
  """i32[1000]: the Restricted ImageNet label of each ImageNet label, -1 if dropped."""
  table = np.full(NUM_IMAGENET_CLASSES, -1, np.int32)
  for label, (_, lo, hi) in enumerate(RESTRICTED_RANGES):
    table[lo:hi + 1] = label
  return table


def restricted_labels(imagenet_labels) -> np.ndarray:
  """Restricted ImageNet labels (0–8, or -1 for a dropped class) of ImageNet labels."""
  return restricted_label_table()[np.asarray(imagenet_labels)]
