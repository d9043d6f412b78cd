r"""Binary MNIST (5 vs 7) with a linear classifier, ℓ∞ ε = 0.2 (Figure 5 of Tsipras et al.).

    python -m tradeoff.main --config=configs/binary_mnist_linear.py --workdir=runs/bin_adv
    python -m tradeoff.main --config=configs/binary_mnist_linear.py --workdir=runs/bin_std \
        --config.attack.eps=0

A single logit sign(wᵀx + b) (class 1 = digit 7) on the 784 pixels, trained
on the logistic loss at the PGD point (PGD-20, step 2.5ε/20; ε ramps over the
first 10 %) with Adam; evaluation: PGD-40 (step 2.5ε/40) with 2 restarts on the
whole 5-vs-7 test set. `python -m tradeoff.figures binary_mnist` trains the
standard and robust models and the top-k-pixel models of Figure 5(c).
"""
from tradeoff import configlib


def get_config(arg=None):
  c = configlib.base_config(dataset='mnist', norm='linf', eps=0.2, model='linear')
  c.data.classes = (5, 7)
  c.model.num_outputs = 1
  c.model.normalize = False   # weights on [0, 1] pixels, drawn as an image
  c.attack = configlib.train_attack_config(20, eps_warmup=0.1)
  c.eval_attack = configlib.attack_config(40, restarts=2)
  c.optim.name = 'adam'
  c.optim.learning_rate = 1e-2
  c.optim.schedule = 'cosine'
  c.num_epochs = 10.0
  c.data.eval_batch_size = 500
  c.log_every = 100
  c.checkpoint_every = 500
  return configlib.finalize(c, arg)
