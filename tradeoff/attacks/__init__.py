"""Attacks on a classifier, all with one signature: attack(logits_fn, x, y, rng) -> x_adv.

    ball.py   the threat model's geometry: random start, steps, projection
    pgd.py    projected gradient descent (Madry et al. 2018) and FGSM; the training attack
    apgd.py   Auto-PGD (Croce & Hein 2020): step-size schedule with momentum and
              restarts from the best point; CE, DLR and targeted DLR (APGD-T) losses
    square.py the Square Attack (Andriushchenko et al. 2020), ℓ∞: score-based, no gradients
    cascade.py  attacks run in turn on the still-robust points (AutoAttack's shape)

`from_config` builds the attack an attack block names (`eval_attack.name`).

Every attack keeps ‖x_adv − x‖ ≤ ε and x_adv inside the input box, and its output
is not differentiated (`lax.stop_gradient`, Danskin's theorem; see losses.py).
"""
from tradeoff.attacks.pgd import ATTACK_LOSSES
from tradeoff.attacks.pgd import Attack
from tradeoff.attacks.pgd import NORMS
from tradeoff.attacks.pgd import Objective
from tradeoff.attacks.pgd import _pgd  # noqa: F401  (tests differentiate through the loop)
from tradeoff.attacks.pgd import fgsm
from tradeoff.attacks.pgd import label_objective
from tradeoff.attacks.apgd import APGD
from tradeoff.attacks.cascade import Cascade
from tradeoff.attacks.square import Square
from tradeoff import errors
from tradeoff import registry

# eval_attack.name -> what it builds. autoattack_fast is AutoAttack's APGD-CE then
# APGD-T (the full standard version adds FAB-T and Square, not available yet).
NAMES = ('pgd', 'apgd_ce', 'apgd_dlr', 'apgd_t', 'square', 'autoattack_fast')


def from_config(block, bounds):
  """The attack of a resolved attack block (configlib.resolve), by block.name."""
  name = block.get('name', 'pgd')
  registry.check_choice('attack name', name, NAMES)
  if name == 'pgd':
    return Attack.from_config(block, bounds)
  bounds = None if bounds is None else tuple(bounds)
  common = dict(norm=block.norm, eps=float(block.eps), num_steps=int(block.num_steps),
                restarts=int(block.restarts), bounds=bounds)
  if name == 'apgd_ce':
    return APGD(loss='ce', **common)
  if name == 'apgd_dlr':
    return APGD(loss='dlr', **common)
  if name == 'square':  # num_steps counts its queries (AutoAttack: 5000)
    return Square(norm=block.norm, eps=float(block.eps), num_queries=int(block.num_steps),
                  restarts=int(block.restarts), bounds=bounds)
  targets = int(block.get('targets', 9))
  if name == 'apgd_t':
    return APGD(targets=targets, **common)
  if name == 'autoattack_fast':
    return Cascade(name, (APGD(loss='ce', **common), APGD(targets=targets, **common)))
  raise errors.UserError(f'attack name {name!r} has no constructor.')  # unreachable

__all__ = ['APGD', 'ATTACK_LOSSES', 'Attack', 'Cascade', 'NAMES', 'NORMS', 'Objective', 'Square',
           'fgsm', 'from_config', 'label_objective']
