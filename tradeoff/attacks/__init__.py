"""Attacks on a classifier, all with one signature: attack(logits_fn, x, y, rng) -> x_adv.

    ball.py   the threat model's geometry: random start, steps, projection
    pgd.py    projected gradient descent (Madry et al. 2018) and FGSM; the training attack
    apgd.py   Auto-PGD (Croce & Hein 2020): step-size schedule with momentum and
              restarts from the best point; CE, DLR and targeted DLR (APGD-T) losses
    fab.py    FAB-T (Croce & Hein 2020): targeted minimal-norm attack, exact box projections
    square.py the Square Attack (Andriushchenko et al. 2020), ℓ∞ and ℓ2: score-based, no gradients
    cascade.py  attacks run in turn on the still-robust points (AutoAttack's shape)
    shift.py  Theorem 2.1's adversary on the §2 distribution: the weak features shifted by −εỹ

`from_config` builds the attack an attack block names (`eval_attack.name`).

Every attack keeps ‖x_adv − x‖ ≤ ε and x_adv inside the input box, and its output
is not differentiated (`lax.stop_gradient`, Danskin's theorem; see losses.py).
"""
import logging

from tradeoff.attacks.pgd import ATTACK_LOSSES
from tradeoff.attacks.pgd import Attack
from tradeoff.attacks.pgd import NORMS
from tradeoff.attacks.pgd import Objective
from tradeoff.attacks.pgd import _pgd  # noqa: F401  (tests differentiate through the loop)
from tradeoff.attacks.pgd import fgsm
from tradeoff.attacks.pgd import label_objective
from tradeoff.attacks.apgd import APGD
from tradeoff.attacks.cascade import Cascade
from tradeoff.attacks.fab import FAB
from tradeoff.attacks.shift import FeatureShift
from tradeoff.attacks.square import Square
from tradeoff import errors
from tradeoff import registry

# eval_attack.name -> what it builds. autoattack is AutoAttack's standard version
# (APGD-CE, APGD-T, FAB-T, Square), autoattack_fast its first two stages; both take
# their settings from the block's `autoattack` group, and a result names itself
# autoattack[_fast]_custom when those are not the standard ones (is_standard). feature_shift is the §2
# distribution's Theorem 2.1 adversary, pgd_shift the per-example worst case of the
# block's PGD and it (for models on that distribution, where PGD can fail).
NAMES = ('pgd', 'apgd_ce', 'apgd_dlr', 'apgd_t', 'fab_t', 'square', 'autoattack',
         'autoattack_fast', 'feature_shift', 'pgd_shift')


def num_targets(targets: int, num_classes: int | None, name: str) -> int:
  """How many target classes a targeted attack takes: `targets`, or every class but
  the true one when the model has fewer (as the reference AutoAttack does, with a
  warning); unchanged when num_classes is not known."""
  if num_classes is None or targets <= num_classes - 1:
    return targets
  logging.warning('%s: targets=%d, but the model has %d classes; using the %d other classes '
                  'as targets.', name, targets, num_classes, num_classes - 1)
  return max(num_classes - 1, 1)


def autoattack(norm: str, eps: float, settings, bounds, fast: bool = False,
               num_classes: int | None = None) -> Cascade:
  """AutoAttack's cascade from an `autoattack` settings group (configlib.autoattack_config).

  num_classes: the model's; the targeted stages take min(targets, num_classes - 1)
  targets (their names say how many).
  """
  s = settings
  apgd = dict(norm=norm, eps=eps, num_steps=int(s.apgd_steps), restarts=int(s.apgd_restarts),
              bounds=bounds)
  targets = num_targets(int(s.targets), num_classes, 'autoattack')
  stages = [APGD(loss='ce', **apgd), APGD(targets=targets, **apgd)]
  if not fast:
    stages.append(FAB(norm=norm, eps=eps, num_steps=int(s.fab_steps),
                      restarts=int(s.fab_restarts), targets=targets,
                      alpha_max=float(s.fab_alpha_max), eta=float(s.fab_eta),
                      beta=float(s.fab_beta), bounds=bounds))
    stages.append(Square(norm=norm, eps=eps, num_queries=int(s.square_queries),
                         restarts=int(s.square_restarts), p_init=float(s.square_p_init),
                         rescale_schedule=bool(s.square_rescale_schedule), bounds=bounds))
  name = 'autoattack_fast' if fast else 'autoattack'
  if not is_standard(settings):
    name += '_custom'
  return Cascade(name, tuple(stages))


def is_standard(settings) -> bool:
  """Whether an `autoattack` settings group is AutoAttack's standard version (the
  reference implementation's settings, configlib.autoattack_config()): only then
  does a result call itself 'autoattack' ('autoattack_fast' for its first two
  stages); any other settings make it 'autoattack_custom' ('autoattack_fast_custom'),
  labelled as such in tables and figures."""
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  return settings.to_dict() == configlib.autoattack_config().to_dict()


def from_config(block, bounds, num_classes: int | None = None):
  """The attack of a resolved attack block (configlib.resolve), by block.name.

  num_classes: the model's number of classes, when known; targeted attacks take at
  most num_classes - 1 targets.
  """
  name = block.get('name', 'pgd')
  registry.check_choice('attack name', name, NAMES)
  if name == 'pgd':
    return Attack.from_config(block, bounds)
  bounds = None if bounds is None else tuple(bounds)
  eps = float(block.eps)
  if name in ('feature_shift', 'pgd_shift'):
    shift = FeatureShift(eps=eps, norm=block.norm, bounds=bounds)
    if name == 'feature_shift':
      return shift
    return Cascade(name, (Attack.from_config(block, bounds), shift))
  if name.startswith('autoattack'):
    return autoattack(block.norm, eps, block.autoattack, bounds,
                      fast=name.startswith('autoattack_fast'), num_classes=num_classes)
  common = dict(norm=block.norm, eps=eps, num_steps=int(block.num_steps),
                restarts=int(block.restarts), bounds=bounds)
  targets = num_targets(int(block.get('targets', 9)), num_classes, name)
  if name == 'apgd_ce':
    return APGD(loss='ce', **common)
  if name == 'apgd_dlr':
    return APGD(loss='dlr', **common)
  if name == 'apgd_t':
    return APGD(targets=targets, **common)
  if name == 'fab_t':
    return FAB(targets=targets, **common)
  if name == 'square':  # num_steps counts its queries (AutoAttack: 5000)
    return Square(norm=block.norm, eps=eps, num_queries=int(block.num_steps),
                  restarts=int(block.restarts), bounds=bounds)
  raise errors.UserError(f'attack name {name!r} has no constructor.')  # unreachable

__all__ = ['APGD', 'ATTACK_LOSSES', 'Attack', 'Cascade', 'FAB', 'FeatureShift', 'NAMES', 'NORMS',
           'Objective',
           'Square', 'autoattack', 'fgsm', 'from_config', 'is_standard', 'label_objective']
