r"""Theorem 2.2 of Tsipras et al. (2019): the soft-margin SVM on the §2.1 distribution.

    python -m tradeoff.main --config=configs/theory_svm.py --workdir=runs/svm_adv
    python -m tradeoff.main --config=configs/theory_svm.py --workdir=runs/svm_std --config.eps=0

y ∈ {±1}; x_1 = y w.p. p = 0.975; d = 1000 weak features N(ηy, 1) with
η = 4/√d. A linear model sign(wᵀx + b) trained on the hinge loss with L2
weight decay λ‖w‖²/2 is the soft-margin SVM; with ε > 0 the hinge is taken at
the ℓ∞ PGD point (for a linear model PGD reaches the exact worst case
δ* = −ε·y·sign(w), i.e. hinge(margin − ε‖w‖₁)). ε defaults to 2η, the radius
of the theorem. `python -m tradeoff.figures theory` runs the ε sweep.
"""
import math

from tradeoff import configlib

D = 1000
ETA = 4 / math.sqrt(D)


def get_config(arg=None):
  c = configlib.base_config(dataset='synthetic', norm='linf', eps=2 * ETA, model='linear')
  c.data.synthetic.update({'p': 0.975, 'eta': ETA, 'd': D, 'num_train': 20000,
                           'num_test': 20000})
  c.model.num_outputs = 1
  c.model.normalize = False
  c.loss.name = 'hinge'
  # PGD-5 of step ε/2 from a random start ends at the exact linear worst case.
  c.attack = configlib.train_attack_config(5, 2.5)
  c.eval_attack = configlib.attack_config(20, 5.0, restarts=2)
  c.optim.name = 'sgd'
  c.optim.learning_rate = 0.01
  c.optim.momentum = 0.9
  c.optim.weight_decay = 1e-3   # λ of the SVM's λ‖w‖²/2
  c.optim.schedule = 'cosine'
  c.num_epochs = 10.0
  c.log_every = 200
  c.checkpoint_every = 1000
  c.data.eval_batch_size = 1000
  return configlib.finalize(c, arg)
