r"""Randomized smoothing on CIFAR-10 (approximate copy): base classifiers trained
with Gaussian noise σ ∈ {0.12, 0.25, 0.5, 1.0} (Cohen et al. 2019), then certified.

    TFDS_DATA_DIR=<dir with cifar10> python -m launch.sweep --sweep=configs/sweeps/smoothing_cifar10.py
    TFDS_DATA_DIR=<dir with cifar10> python -m tradeoff.figures smoothing \
        --results=figures/results/smoothing_cifar10.json --certify_examples=100

The CPU scale of `reference_cifar10_cpu` (configs/cifar10_l2.py with one
residual unit per group, ResNet-8, and 5 epochs; SGD 0.1 with momentum, steps
×0.1 at 50 % and 75 %, crops and flips), trained with `loss.name=gaussian_augment`
(cross-entropy on x + σε in [0, 1] pixel space, no attack; attack.eps = 0).
The base classifier's own robust accuracy is measured under the config's
ℓ2 ε = 0.314 PGD-20 × 5 on the first 500 test images, beside the smoothed
classifier's certificates. Cohen et al. train a ResNet-110 for 90 epochs and
certify 500 test images with n = 100 000: on an accelerator, drop the
model.units and num_epochs overrides and pass --certify_n=100000
--certify_examples=500.
"""
import ml_collections

SIGMAS = (0.12, 0.25, 0.5, 1.0)


def get_config(arg=None):
  del arg
  s = ml_collections.ConfigDict()
  s.name = 'smoothing_cifar10'
  s.base = 'configs/cifar10_l2.py'
  s.overrides = (('model.units', 1), ('num_epochs', 5.0), ('loss.name', 'gaussian_augment'),
                 ('attack.eps', 0.0), ('num_robust_eval_examples', 500),
                 ('checkpoint_every', 500))
  s.grid = [(('loss.sigma', SIGMAS), ('seed', (0,)))]
  s.budget = {}
  return s
