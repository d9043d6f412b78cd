r"""Robust overfitting on CIFAR-10 ℓ∞ ε = 8/255 (Rice, Wong & Kolter 2020), at CPU scale.

    TFDS_DATA_DIR=<dir with cifar10> python -m launch.sweep --sweep=configs/sweeps/overfitting_cifar10.py
    python -m tradeoff.figures overfitting --results=figures/results/overfitting_cifar10.json

configs/cifar10_linf.py (pre-activation ResNet, SGD 0.1, momentum 0.9, weight
decay 2e-4, ×0.1 at 50 % and 75 %, crops and flips) at Rice et al.'s ε = 8/255,
made small enough for this CPU: ResNet-8 (one unit per group), 5000 training
images for 40 epochs (1563 steps of 128), PGD-5 training (step 2.5ε/5), and
PGD-10 evaluation (step 2.5ε/10, one random start, as Rice et al. evaluate
during training) every 2 epochs and at the end, on 500 validation images (held
out of the training set), the first 500 training images and the first 500 test
images (clean accuracy: all 10 000). Rice et
al. train a PreAct ResNet-18 on all 50 000 images for 200 epochs; on an
accelerator, drop the overrides of model.units, data.train_size and num_epochs.
"""
from launch import grids


def get_config(arg=None):
  del arg
  s = grids.reference_sweep(
      'overfitting_cifar10', 'configs/cifar10_linf.py', 8 / 255,
      overrides=(('model.units', 1), ('attack.num_steps', 5), ('attack.step_scale', 2.5),
                 ('data.train_size', 5000), ('data.validation_size', 500),
                 ('num_epochs', 40.0), ('eval_every', 78), ('eval_train_examples', 500),
                 ('num_robust_eval_examples', 500), ('checkpoint_every', 156),
                 ('eval_attack.num_steps', 10), ('eval_attack.restarts', 1)))
  s.grid = [(('eps', (8 / 255,)),)]
  return s
