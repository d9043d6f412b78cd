r"""CIFAR-10, ℓ∞ ε = 4/255 (Tsipras et al.): the paper's ResNet (filters 16/16/32/64, 5 units).

    python -m tradeoff.main --config=configs/cifar10_linf.py --workdir=runs/cifar10_linf
    python -m tradeoff.main --config=configs/cifar10_linf.py:smoke --workdir=/tmp/smoke

Training: PGD-7 with steps of 2.5·ε/7 from a random start, SGD with momentum
0.9, weight decay 2e-4 and learning rate 0.1 decayed ×0.1 at 50 % and 75 % of
training, random crops and flips (Madry et al.'s cifar10_challenge recipe).
Evaluation: PGD-20 (step 2.5·ε/20) with 5 restarts. `--config.model.widen=10`
gives the wide Madry et al. network. This is accelerator-sized: about 200
epochs.
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='cifar10', norm='linf', eps=4 / 255, model='cifar_resnet')
  c.attack = configlib.train_attack_config(7)
  c.eval_attack = configlib.attack_config(20, restarts=5)
  c.data.augment = 'crop_flip'
  c.optim.weight_decay = 2e-4
  c.num_epochs = 200.0
  return configlib.finalize(c, arg)
