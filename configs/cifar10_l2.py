r"""CIFAR-10, ℓ2 ε = 0.314 (Tsipras et al.): the paper's ResNet.

    python -m tradeoff.main --config=configs/cifar10_l2.py --workdir=runs/cifar10_l2
    python -m tradeoff.main --config=configs/cifar10_l2.py:smoke --workdir=/tmp/smoke

As configs/cifar10_linf.py, with ℓ2 PGD (normalised-gradient steps).
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='cifar10', norm='l2', eps=0.314, model='cifar_resnet')
  c.attack = configlib.train_attack_config(7)
  c.eval_attack = configlib.attack_config(20, restarts=5)
  c.data.augment = 'crop_flip'
  c.optim.weight_decay = 2e-4
  c.num_epochs = 200.0
  return configlib.finalize(c, arg)
