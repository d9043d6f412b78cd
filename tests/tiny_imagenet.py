"""The tests' tiny ImageNet: imagenet.write_ilsvrc_tars with classes chosen to
exercise the Restricted ImageNet mapping, random pixels of random sizes (so
crops and resizes see non-square inputs)."""
import numpy as np

from tradeoff import imagenet

# One ImageNet class from each Restricted ImageNet range (ranges' ends
# included), and two classes outside every range.
TRAIN_CLASSES = (151, 285, 30, 37, 80, 382, 389, 121, 300, 0, 500)
PER_CLASS = 3
NUM_VAL = 240   # the first 229 validation images hold all nine superclasses


def write_manual_dir(root: str) -> str:
  return imagenet.write_ilsvrc_tars(root, TRAIN_CLASSES, PER_CLASS, NUM_VAL)


def expected_validation_labels() -> np.ndarray:
  """ImageNet labels of the NUM_VAL validation images, in file-name order."""
  names, val = imagenet.synset_names()
  index = {n: i for i, n in enumerate(names)}
  return np.array([index[w] for w in val[:NUM_VAL]])


def expected_restricted_train_counts() -> np.ndarray:
  table = imagenet.restricted_label_table()
  kept = [table[c] for c in TRAIN_CLASSES if table[c] >= 0]
  return np.bincount(kept, minlength=len(imagenet.RESTRICTED_RANGES)) * PER_CLASS
