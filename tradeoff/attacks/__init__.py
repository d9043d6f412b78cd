"""Attacks on a classifier, all with one signature: attack(logits_fn, x, y, rng) -> x_adv.

    ball.py   the threat model's geometry: random start, steps, projection
    pgd.py    projected gradient descent (Madry et al. 2018) and FGSM; the training attack
    apgd.py   Auto-PGD (Croce & Hein 2020): step-size schedule with momentum and
              restarts from the best point; CE, DLR and targeted DLR (APGD-T) losses

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

__all__ = ['APGD', 'ATTACK_LOSSES', 'Attack', 'NORMS', 'Objective', 'fgsm', 'label_objective']
