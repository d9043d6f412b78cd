r"""Theorem 2.1 beyond linear models: small MLPs adversarially trained on the §2.1 distribution.

    python -m tradeoff.main --config=configs/theory_mlp.py --workdir=runs/mlp --config.eps=0.1

p = 0.9 (so the bound p/(1−p)·δ = 9δ leaves a visible region), d = 1000 weak
features with η = 3/√d (f_avg has Φ(3) = 99.87 % standard accuracy). The
training ε (default 2η, the theorem's radius) is varied by
`python -m tradeoff.figures theory`; evaluation is always at ε = 2η, on a
stratified test set (exact label and x_1 counts), per example the worse of
PGD-50 × 3 (margin loss) and the shift of the weak features by −εỹ that proves
Theorem 2.1 (`eval_attack.name='pgd_shift'`, tradeoff/attacks/shift.py). The
training ε ramps up over the first 30 % of training: at full ε = 2η from the
first step the MLP stays at chance (loss ln 2), while the ramp lets it find x_1.
"""
import math

from tradeoff import configlib

D = 1000
ETA = 3 / math.sqrt(D)


def get_config(arg=None):
  c = configlib.base_config(dataset='synthetic', norm='linf', eps=2 * ETA, model='mlp')
  c.data.synthetic.update({'p': 0.9, 'eta': ETA, 'd': D, 'num_train': 20000,
                           'num_test': 20000})
  c.model.num_outputs = 1
  c.model.normalize = False
  c.model.hidden = (64, 64)
  c.loss.name = 'pgd_at'
  c.attack = configlib.train_attack_config(10, 2.5, eps_warmup=0.3)
  c.eval_attack = configlib.attack_config(50, 5.0, restarts=3)
  c.eval_attack.loss = 'margin'
  # Per example the worse of PGD and Theorem 2.1's own adversary (the weak features
  # shifted by −εỹ): PGD alone left TRADES models above the theorem's bound.
  c.eval_attack.name = 'pgd_shift'
  c.optim.name = 'adam'
  c.optim.learning_rate = 1e-3
  c.optim.schedule = 'cosine'
  c.num_epochs = 10.0
  c.log_every = 200
  c.checkpoint_every = 1000
  c.data.eval_batch_size = 1000
  return configlib.finalize(c, arg)
