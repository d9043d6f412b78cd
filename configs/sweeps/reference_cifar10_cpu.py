r"""Reference models, CIFAR-10 ℓ∞ 4/255 and ℓ2 0.314, at a size this 2-core CPU trains.

    TFDS_DATA_DIR=... python -m launch.sweep --sweep=configs/sweeps/reference_cifar10_cpu.py

configs/cifar10_linf.py (pre-activation ResNet, SGD 0.1 with momentum 0.9,
weight decay 2e-4, steps ×0.1 at 50 % and 75 %, random crops and flips) made
small enough for about 20 minutes a model here:

  * one residual unit per group (ResNet-8: filters 16/16/32/64) instead of 5;
  * 5 epochs;
  * the training attack is one step from a random start with step 1.25·ε
    ("fast adversarial training", Wong, Rice & Kolter, ICLR 2020) instead of
    PGD-7;
  * evaluation: the config's PGD-20 (step 2.5ε/20) with 5 random restarts on
    the first 500 test images (clean accuracy: all 10 000).

Runs: a standard model (attack.eps = 0), an ℓ∞ 4/255 and an ℓ2 0.314
adversarially trained model, and a second standard model (seed 1) that
judges the adversarial examples of Figure 3. The standard models are
evaluated at ℓ∞ 4/255 here; `python -m tradeoff.figures reference`
evaluates them under each robust model's threat.
"""

from launch import grids


def get_config(arg=None):
  del arg
  s = grids.reference_sweep(
      'reference_cifar10_cpu', 'configs/cifar10_linf.py', 4 / 255,
      overrides=(('model.units', 1), ('attack.num_steps', 1),
                 ('attack.step_scale', 1.25), ('num_epochs', 5.0),
                 ('num_robust_eval_examples', 500), ('checkpoint_every', 500)))
  s.grid = [*s.grid,
            (('norm', ('l2',)), ('eps', (0.314,))),
            (('attack.eps', (0.0,)), ('seed', (1,)))]
  return s
