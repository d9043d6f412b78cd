"""The config schema every experiment shares; configs/*.py fill in the values.

Groups: data, model, loss, attack (training), eval_attack, optim, plus the
loop's settings. `config.eps` and `config.norm` are the threat model of both
attacks: an attack block whose own `eps` / `norm` is unset (None) takes them,
so `--config.eps=0.1` moves the training and evaluation ε together. Setting
`--config.attack.eps` or `--config.eval_attack.eps` splits them.

A block's step size follows its ε and its number of steps: step =
`step_scale`·ε/`num_steps` (Madry et al.'s 2.5·ε/k with the default
step_scale = 2.5), so `--config.eval_attack.num_steps=20` gives PGD-20 with the
step of PGD-20, not PGD-100's step taken 20 times. An explicit `step_size`
overrides that. `resolve` turns a finished config (after command-line
overrides) into concrete values once; the Attack built from it refuses steps
that cannot reach the edge of the ball (attacks.Attack).
"""
from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from tradeoff import errors

SMOKE = 'smoke'
MADRY_STEP_SCALE = 2.5


def attack_config(num_steps: int, step_scale: float = MADRY_STEP_SCALE, restarts: int = 1,
                  random_start: bool = True, *, norm: str | None = None,
                  eps: float | None = None) -> ml_collections.ConfigDict:
  """A PGD block. norm / eps None: config.norm / config.eps."""
  return ml_collections.ConfigDict({
      'name': 'pgd',       # one of attacks.NAMES (pgd, apgd_ce, ..., autoattack)
      'norm': placeholder(str) if norm is None else norm,
      'eps': placeholder(float) if eps is None else float(eps),
      'num_steps': num_steps,
      'step_scale': float(step_scale),  # step = step_scale·ε/num_steps ...
      'step_size': placeholder(float),   # ... unless this is set
      'restarts': restarts,
      'random_start': random_start,
      'loss': 'ce',        # attack objective: 'ce' or 'margin'
      'unroll': True,      # fully unroll the PGD loop (fast on CPU; see attacks/pgd.py)
      'targets': 9,        # apgd_t / fab_t: target classes per point
      'autoattack': autoattack_config(),
  })


def autoattack_config() -> ml_collections.ConfigDict:
  """The settings of name='autoattack' / 'autoattack_fast' (the block's own num_steps,
  restarts and targets are the single attacks'). Defaults: AutoAttack's "standard"
  version (Croce & Hein 2020, reference implementation)."""
  return ml_collections.ConfigDict({
      'apgd_steps': 100,        # APGD-CE and APGD-T iterations
      'apgd_restarts': 1,
      'targets': 9,             # APGD-T and FAB-T target classes
      'fab_steps': 100,
      'fab_restarts': 1,
      'fab_alpha_max': 0.1,
      'fab_eta': 1.05,
      'fab_beta': 0.9,
      'square_queries': 5000,
      'square_restarts': 1,
      'square_p_init': 0.8,
      'square_rescale_schedule': False,   # the window schedule of 10 000 queries, unscaled
  })


def train_attack_config(num_steps: int, step_scale: float = MADRY_STEP_SCALE,
                        eps_warmup: float = 0.0, **kwargs) -> ml_collections.ConfigDict:
  """The training attack: a PGD block plus an ε warm-up.

  eps_warmup is the fraction of training over which ε (and the step size)
  ramp linearly from 0 to their full values.
  """
  c = attack_config(num_steps, step_scale, **kwargs)
  c.eps_warmup = eps_warmup
  return c


ATTACK_BLOCKS = ('attack', 'eval_attack')
# Fields whose JSON form loses their type: tuples come back as lists, and unset
# placeholders as plain None, which the command line could not override.
_TUPLE_FIELDS = (('data', 'classes'), ('data', 'crop_scale'), ('model', 'hidden'),
                 ('model', 'keep_features'), ('optim', 'decay_at'))
_PLACEHOLDERS = (('norm', str), ('eps', float), ('step_size', float))


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of a finished config with both attack blocks' norm, eps and
  step_size filled in (concrete values), the one place they are derived."""
  c = ml_collections.ConfigDict(config.to_dict())
  for block in ATTACK_BLOCKS:
    a = c[block]
    if a.norm is None:
      a.norm = c.norm
    if a.eps is None:
      a.eps = float(c.eps)
    if a.step_size is None:
      if a.num_steps <= 0:
        a.step_size = 0.0
      else:
        a.step_size = float(a.step_scale) * float(a.eps) / int(a.num_steps)
  return c


def from_json(saved: dict) -> ml_collections.ConfigDict:
  """A config read back from config.json, with the types JSON lost restored,
  so that command-line overrides of every field work as on the original."""
  saved = {k: (dict(v) if isinstance(v, dict) else v) for k, v in saved.items()}
  for group, key in _TUPLE_FIELDS:
    if key in saved.get(group, {}):
      saved[group][key] = tuple(saved[group][key])
  config = ml_collections.ConfigDict(saved)
  for block in ATTACK_BLOCKS:
    for key, kind in _PLACEHOLDERS:
      if config[block].get(key, None) is None:
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
      'validation_size': 0,    # > 0: hold out this many training examples (class-balanced,
                               # seeded) to validate on; the best checkpoint is kept
      'labelled_size': 0,      # > 0: only this many labels are used (robust self-training) ...
      'pseudo_label_from': '', # ... the rest come from this finished run's predictions
      'augment': 'none',       # 'none' or 'crop_flip'
      'batch_size': 128,       # global, split over local devices
      'eval_batch_size': 500,
      # Streaming datasets (imagenet2012, restricted_imagenet): decoded on demand.
      'image_size': 224,       # training crops and evaluation crops are this square
      'eval_resize': 0,        # evaluation: shorter side resized to this (0: image_size / 0.875)
      'crop_scale': (0.08, 1.0),  # training: random-resized crop's area fraction
      'workers': 16,           # decoding threads
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
      'depth': 50,             # imagenet_resnet: 18, 34, 50 or 101
      'dtype': 'float32',      # imagenet_resnet: 'bfloat16' computes in bf16 (params f32)
      'eval_dtype': 'float32', # evaluation and its attacks ('': as training's dtype)
  })
  c.loss = ml_collections.ConfigDict({
      'name': 'pgd_at',        # standard | pgd_at | trades | hinge | gaussian_augment | package.module:fn
      'beta': 6.0,             # trades
      'sigma': 0.0,            # gaussian_augment: noise level σ (pixels in [0, 1])
  })
  c.attack = train_attack_config(7)
  c.eval_attack = attack_config(20, restarts=1)
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
  c.eval_every = 0             # > 0: also evaluate during training (test, validation, train)
  c.eval_train_examples = 0    # > 0: those evaluations also attack the first n training examples
  c.max_checkpoints = 3
  c.tensorboard = True
  c.progress_bar = True
  return c


def shrink_for_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A seconds-long run of the same code paths: tiny data, 4 steps, weak attacks."""
  c.data.train_size = 64
  c.data.batch_size = 16
  c.data.eval_batch_size = 64
  c.model.units = min(c.model.units, 1)  # ResNet-8: the same code as ResNet-32, 4× less to compile
  c.num_train_steps = 4
  c.num_eval_examples = 100
  c.attack.num_steps = min(c.attack.num_steps, 2)
  c.eval_attack.num_steps = min(c.eval_attack.num_steps, 3)
  c.eval_attack.restarts = min(c.eval_attack.restarts, 2)
  aa = c.eval_attack.autoattack
  aa.apgd_steps, aa.fab_steps = min(aa.apgd_steps, 3), min(aa.fab_steps, 3)
  aa.square_queries = min(aa.square_queries, 10)
  c.attack.step_scale = MADRY_STEP_SCALE
  c.eval_attack.step_scale = MADRY_STEP_SCALE
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
  raise errors.UserError(f'Unknown config variant {arg!r}. Valid choices: {SMOKE!r} '
                   f'(e.g. --config=configs/mnist_linf.py:smoke), or none.')


def load(spec: str) -> ml_collections.ConfigDict:
  """Loads 'path/to/config.py[:arg]' as --config does, e.g. for notebooks and sweeps."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  path, _, arg = spec.partition(':')
  if not os.path.isfile(path):
    raise errors.DataNotFoundError(f'Config file {path!r} not found.')
  module_spec = importlib.util.spec_from_file_location('_tradeoff_config', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)
