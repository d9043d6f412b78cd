r"""The all-Gaussian variant (EPFL lecture notes): x = a·y + N(0, I_D), D = 1000.

    python -m tradeoff.main --config=configs/theory_gaussian.py --workdir=runs/gauss_adv

a_1 = 1 and a_i = √(log D/(D−1)) for the D − 1 weak features; the adversary's
ℓ∞ radius is ε = 2√(log D/(D−1)) ≈ 0.166. A linear model trained on the
logistic loss at the PGD point (ε = 0: standard training), by SGD with a cosine
learning-rate decay (a constant rate leaves the weak weights oscillating around
0). Checkpoints every 10 steps are all kept, so `python -m tradeoff.figures
theory` can plot the weights over training.
"""
from tradeoff import configlib
from tradeoff import theory

DIM = 1000


def get_config(arg=None):
  c = configlib.base_config(dataset='gaussian', norm='linf', eps=theory.gaussian_eps(DIM),
                            model='linear')
  c.data.synthetic.update({'d': DIM - 1, 'num_train': 20000, 'num_test': 20000,
                           'stratified_test': False})
  c.model.num_outputs = 1
  c.model.normalize = False
  c.loss.name = 'pgd_at'
  c.attack = configlib.train_attack_config(5, 2.5)
  c.eval_attack = configlib.attack_config(20, 5.0, restarts=2)
  c.optim.name = 'sgd'
  c.optim.learning_rate = 0.01
  c.optim.momentum = 0.9
  c.optim.schedule = 'cosine'
  c.num_epochs = 10.0
  c.log_every = 50
  c.checkpoint_every = 10
  c.max_checkpoints = 1000
  c.data.eval_batch_size = 1000
  return configlib.finalize(c, arg)
