r"""MNIST, ℓ2 ε = 1.5 (Tsipras et al., Fig. 1): the Madry et al. CNN.

    python -m tradeoff.main --config=configs/mnist_l2.py --workdir=runs/mnist_l2
    python -m tradeoff.main --config=configs/mnist_l2.py:smoke --workdir=/tmp/smoke

Training: PGD-40 with normalised-gradient steps of 2.5·ε/40 from a random start
in the ℓ2 ball; evaluation: PGD-100 (step 2.5·ε/100), 5 restarts.
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='mnist', norm='l2', eps=1.5, model='madry_cnn')
  c.attack = configlib.train_attack_config(40)
  c.eval_attack = configlib.attack_config(100, restarts=5)
  c.attack.eps_warmup = 0.1  # training ε ramps up over the first 10 % (docs/usage.md: Configs)
  c.optim.name = 'adam'
  c.optim.learning_rate = 1e-3
  c.optim.schedule = 'cosine'
  c.num_epochs = 20.0
  return configlib.finalize(c, arg)
