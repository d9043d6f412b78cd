"""The config schema every experiment shares; configs/*.py fill in the values.

Groups: data, model, loss, attack (training), eval_attack, optim, plus the
loop's settings. `config.eps` and `config.norm` are the threat model of both
attacks: an attack block whose own `eps` / `norm` is unset (None) takes them,
so `--config.eps=0.1` moves the training and evaluation ε together. Setting
`--config.attack.eps` or `--config.eval_attack.eps` splits them. A block's
step size is `rel_step_size`·(its ε) unless `step_size` is set explicitly.
`resolve_attack` gives the concrete values.
"""
from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

SMOKE = 'smoke'


def attack_config(num_steps: int, rel_step_size: float, restarts: int = 1,
                  random_start: bool = True, *, norm: str | None = None,
                  eps: float | None = None) -> ml_collections.ConfigDict:
  """A PGD block. norm / eps None: config.norm / config.eps."""
  return ml_collections.ConfigDict({
      'norm': placeholder(str) if norm is None else norm,
      'eps': placeholder(float) if eps is None else float(eps),
      'num_steps': num_steps,
      'rel_step_size': float(rel_step_size),  # step = rel_step_size·ε ...
      'step_size': placeholder(float),         # ... unless this is set
      'restarts': restarts,
      'random_start': random_start,
      'loss': 'ce',        # attack objective: 'ce' or 'margin'
      'unroll': True,      # fully unroll the PGD loop (fast on CPU; see attacks.py)
  })


def train_attack_config(num_steps: int, rel_step_size: float, eps_warmup: float = 0.0,
                        **kwargs) -> ml_collections.ConfigDict:
  """The training attack: a PGD block plus an ε warm-up.

  eps_warmup is the fraction of training over which ε (and the step size)
  ramp linearly from 0 to their full values.
  """
  c = attack_config(num_steps, rel_step_size, **kwargs)
  c.eps_warmup = eps_warmup
  return c


ATTACK_BLOCKS = ('attack', 'eval_attack')


def resolve_attack(config: ml_collections.ConfigDict, block: str) -> ml_collections.ConfigDict:
  """config[block] with norm, eps and step_size filled in (a copy)."""
  if block not in ATTACK_BLOCKS:
    raise ValueError(f'Unknown attack block {block!r}. Valid choices: {ATTACK_BLOCKS}.')
  c = ml_collections.ConfigDict(config[block].to_dict())
  if c.norm is None:
    c.norm = config.norm
  if c.eps is None:
    c.eps = float(config.eps)
  if c.step_size is None:
    c.step_size = c.rel_step_size * c.eps
  return c


def restore_placeholders(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Re-types the attack fields a JSON round trip left as None (for overrides)."""
  for block in ATTACK_BLOCKS:
    for key, kind in (('norm', str), ('eps', float), ('step_size', float)):
      if config[block][key] is None:
        config[block][key] = placeholder(kind)
  return config


def base_config(*, dataset: str, norm: str, eps: float, model: str) -> ml_collections.ConfigDict:
  """Defaults shared by all experiments; each configs/*.py overrides what differs."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.norm = norm
  c.eps = float(eps)

  c.data = ml_collections.ConfigDict({
      'name': dataset,
      'data_dir': '',          # '' -> $TFDS_DATA_DIR -> tfds's default
      'download': True,        # let tfds download an unprepared dataset
      'classes': (),           # e.g. (5, 7): keep these classes, relabelled 0..k-1
      'train_size': 0,         # > 0: class-balanced seeded subset of this size
      'augment': 'none',       # 'none' or 'crop_flip'
      'batch_size': 128,       # global, split over local devices
      'eval_batch_size': 500,
      'synthetic': {           # only for name='synthetic' (Tsipras et al. §2.1) / 'gaussian'
          'p': 0.95, 'eta': 0.1, 'd': 1000, 'num_train': 10000, 'num_test': 10000, 'seed': 0,
          'stratified_test': True,  # exact label / x_1-agreement counts in the test set
      },
  })
  c.model = ml_collections.ConfigDict({
      'name': model,
      'num_outputs': 0,        # 0: one logit per class; 1: binary score (2 classes)
      'normalize': True,       # (x - mean) / std as the model's first layer
      'hidden': (256, 256),    # mlp
      'keep_features': (),     # linear: use only these flattened input indices (() = all)
      'width': 1.0,            # madry_cnn width multiplier (0.25: 8/16 channels, 256 hidden)
      'units': 5,              # cifar_resnet units per group (5: ResNet-32)
      'widen': 1,              # cifar_resnet width (10: the wide Madry model)
  })
  c.loss = ml_collections.ConfigDict({
      'name': 'pgd_at',        # standard | pgd_at | trades | hinge | package.module:fn
      'beta': 6.0,             # trades
  })
  c.attack = train_attack_config(7, 2.5 / 7)
  c.eval_attack = attack_config(20, 2.5 / 20, restarts=1)
  c.optim = ml_collections.ConfigDict({
      'name': 'sgd',           # sgd | adam | adamw
      'learning_rate': 0.1,
      'momentum': 0.9,
      'nesterov': False,
      'weight_decay': 0.0,
      'schedule': 'piecewise',  # constant | cosine | piecewise
      'decay_at': (0.5, 0.75),  # fractions of training (piecewise)
      'decay_factor': 0.1,
      'warmup_steps': 0,
      'grad_clip_norm': 0.0,    # 0: no clipping
  })
  c.num_epochs = 10.0
  c.num_train_steps = 0        # > 0 overrides num_epochs
  c.num_eval_examples = 0      # > 0: evaluate on the first n test examples only
  c.num_robust_eval_examples = 0  # > 0: attack only the first n of them (clean: all)
  c.log_every = 100
  c.checkpoint_every = 1000
  c.eval_every = 0             # > 0: also evaluate during training
  c.max_checkpoints = 3
  c.tensorboard = True
  c.progress_bar = True
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A seconds-long run of the same code paths: tiny data, 4 steps, weak attacks."""
  c.data.train_size = 64
  c.data.batch_size = 16
  c.data.eval_batch_size = 64
  c.num_train_steps = 4
  c.num_eval_examples = 100
  c.attack.num_steps = min(c.attack.num_steps, 2)
  c.eval_attack.num_steps = min(c.eval_attack.num_steps, 3)
  c.eval_attack.restarts = min(c.eval_attack.restarts, 2)
  c.attack.rel_step_size = 2.5 / 2
  c.eval_attack.rel_step_size = 2.5 / 3
  c.log_every = 2
  c.checkpoint_every = 2
  c.progress_bar = False
  return c


def finalize(c: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """Applies the variant named by the ':arg' suffix of --config."""
  if arg in (None, ''):
    return c
  if arg == SMOKE:
    return shrink_for_smoke(c)
  raise ValueError(f'Unknown config variant {arg!r}. Valid choices: {SMOKE!r} '
                   f'(e.g. --config=configs/mnist_linf.py:smoke), or none.')


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads 'path/to/config.py[:arg]' as --config does, e.g. for notebooks and sweeps."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(':')
  if not os.path.exists(path):
    raise FileNotFoundError(f'Config file {path!r} not found.')
  module_spec = importlib.util.spec_from_file_location('_tradeoff_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


def reduced_mnist_overrides() -> tuple[tuple[str, object], ...]:
  """Sweep overrides that make an MNIST-sized grid fit a 2-core CPU.

  A quarter-width Madry CNN (8/16 conv channels, 256 hidden units), PGD-7
  training (step 2.5ε/7), PGD-20 evaluation with 2 random restarts (step
  2.5ε/20) of the first 1000 test images (clean accuracy: all of them), a
  checkpoint every 500 steps.
  """
  return (('model.width', 0.25),
          ('attack.num_steps', 7), ('attack.rel_step_size', 2.5 / 7),
          ('eval_attack.num_steps', 20), ('eval_attack.rel_step_size', 2.5 / 20),
          ('eval_attack.restarts', 2),
          ('num_robust_eval_examples', 1000),
          ('checkpoint_every', 500))


def size_sweep(name: str, base: str, eps,
               large_sizes=(10000, 60000)) -> ml_collections.ConfigDict:
  """A Figure 1 / 6 sweep at the reduced scale: training ε × training-set size.

  n in `large_sizes` with one seed, n ∈ {100, 1000} with two; every run
  trains max(1200 steps, 2 epochs) of batch 128 (see README: Sweeps).
  """
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = reduced_mnist_overrides()
  s.grid = [(('eps', tuple(eps)), ('data.train_size', tuple(large_sizes)), ('seed', (0,))),
            (('eps', tuple(eps)), ('data.train_size', (100, 1000)), ('seed', (0, 1)))]
  s.budget = {'steps': 1200, 'min_epochs': 2}
  return s


def eps_sweep(name: str, base: str, eps, seeds=(0,), reuse=(),
              extra_grid=()) -> ml_collections.ConfigDict:
  """A Figure 7 sweep at the reduced scale: training ε on the full training set.

  Same budget as size_sweep (1200 steps of batch 128, 2.6 epochs at n = 60 000),
  so the n = 60 000 runs of a size sweep listed in `reuse` are the same runs
  and are collected from there instead of trained again.
  """
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = reduced_mnist_overrides()
  s.grid = [(('eps', tuple(eps)), ('data.train_size', (60000,)), ('seed', tuple(seeds))),
            *extra_grid]
  s.budget = {'steps': 1200, 'min_epochs': 2}
  s.reuse = tuple(reuse)
  return s


def reference_sweep(name: str, base: str, eps: float,
                    overrides=()) -> ml_collections.ConfigDict:
  """A standard (attack.eps = 0) and a robust (attack.eps = eps) model of `base`
  (with `overrides` applied to both), both evaluated by its evaluation attack
  at config.eps."""
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = base
  s.overrides = tuple(overrides)
  s.grid = [(('attack.eps', (0.0, eps)),)]
  s.budget = {}
  return s
