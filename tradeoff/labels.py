"""How result records read: attack labels, ε, percentages and Markdown tables.

Shared by tradeoff.figures and tradeoff.bench (which does not import the figure
modules), so a benchmark report and a figure name an attack the same way.
"""
from __future__ import annotations

from typing import Sequence


def markdown(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
  """A GitHub-flavoured markdown table, one line per row, ending with a newline."""
  lines = ['| ' + ' | '.join(map(str, header)) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'


def pct(x: float | None, digits: int = 1) -> str:
  """0.9859 -> '98.6 %' ('–' for None)."""
  return '–' if x is None else f'{100 * x:.{digits}f} %'


def fmt_eps(eps: float) -> str:
  """ε for labels: '4/255' for a multiple of 1/255 that has no short decimal form
  (CIFAR-10's 0.0156863), else the shortest decimal ('0.3')."""
  short = f'{eps:g}'
  k = round(eps * 255)
  if len(short) > 6 and k and abs(eps * 255 - k) < 1e-4:
    return f'{k}/255'
  return short


_CASCADES = {'autoattack': 'AutoAttack standard', 'autoattack_fast': 'AutoAttack fast',
             'autoattack_custom': 'AutoAttack, custom settings',
             'autoattack_fast_custom': 'AutoAttack fast, custom settings',
             'pgd_shift': 'worst of'}


def attack_label(atk: dict) -> str:
  """An evaluation attack's record (its describe()) in a few words: 'PGD-20 × 2
  restarts', 'APGD-CE-100', 'FAB-T9-100', 'Square-5000', 'AutoAttack standard
  (APGD-CE-100, APGD-T9-100, FAB-T9-100, Square-5000)'."""
  name = atk['name']
  if 'stages' in atk:
    return (f"{_CASCADES.get(name, name)} ("
            + ', '.join(attack_label(s) for s in atk['stages']) + ')')
  steps = atk.get('num_steps', 0)
  if name.startswith('pgd'):   # PGD's records name it pgd<steps>
    return f"PGD-{steps} × {atk['restarts']} restart{'s' if atk['restarts'] != 1 else ''}"
  restarts = f" × {atk['restarts']}" if atk.get('restarts', 1) > 1 else ''
  if name.startswith('apgd_t'):
    return f"APGD-T{name[6:]}-{steps}{restarts}"
  if name.startswith('apgd_'):
    return f"APGD-{name[5:].upper()}-{steps}{restarts}"
  if name.startswith('fab_t'):
    return f"FAB-T{name[5:]}-{steps}{restarts}"
  if name == 'square':
    return f"Square-{steps}{restarts}"
  if name == 'fgsm':
    return 'FGSM'
  if name == 'feature_shift':
    return 'Theorem 2.1 shift'
  return name
