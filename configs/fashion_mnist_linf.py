r"""Fashion-MNIST, ℓ∞ ε = 0.1: the Madry et al. CNN.

    python -m tradeoff.main --config=configs/fashion_mnist_linf.py --workdir=runs/fmnist_linf
    python -m tradeoff.main --config=configs/fashion_mnist_linf.py:smoke --workdir=/tmp/smoke

The paper has no Fashion-MNIST experiment. ε = 0.1 is the usual choice for it:
its garments have large mid-grey regions, and at MNIST's 0.3 an ℓ∞ adversary
can erase most of the texture that separates shirt, pullover and coat.
Attacks as for MNIST ℓ∞, scaled to ε (steps of ε/30).
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='fashion_mnist', norm='linf', eps=0.1, model='madry_cnn')
  c.attack = configlib.train_attack_config(40, 40 / 30)  # step ε/30
  c.eval_attack = configlib.attack_config(100, 100 / 30, restarts=5)  # step ε/30
  c.attack.eps_warmup = 0.1  # training ε ramps up over the first 10 % (docs/usage.md: Configs)
  c.optim.name = 'adam'
  c.optim.learning_rate = 1e-3
  c.optim.schedule = 'cosine'
  c.num_epochs = 20.0
  return configlib.finalize(c, arg)
