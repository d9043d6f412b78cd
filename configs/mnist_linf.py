r"""MNIST, ℓ∞ ε = 0.3: the Madry et al. (2018) CNN, adversarially trained.

    python -m tradeoff.main --config=configs/mnist_linf.py --workdir=runs/mnist_linf
    python -m tradeoff.main --config=configs/mnist_linf.py --workdir=runs/mnist_std --config.eps=0
    python -m tradeoff.main --config=configs/mnist_linf.py:smoke --workdir=/tmp/smoke

ε = 0.3 and the training attack (PGD-40, step 0.01, random start) are those of
Madry et al. and Tsipras et al. (ε ramps up over the first 10 % of training);
evaluation uses PGD-100 (step 0.01) with 5
random restarts. `--config.eps=0` trains a standard model with the same code.
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.3, model='madry_cnn')
  c.attack = configlib.train_attack_config(40, 40 / 30)  # step ε/30 = 0.01
  c.eval_attack = configlib.attack_config(100, 100 / 30, restarts=5)  # step 0.01
  c.attack.eps_warmup = 0.1  # training ε ramps up over the first 10 % (docs/usage.md: Configs)
  c.optim.name = 'adam'
  c.optim.learning_rate = 1e-3
  c.optim.schedule = 'cosine'
  c.num_epochs = 20.0
  return configlib.finalize(c, arg)
