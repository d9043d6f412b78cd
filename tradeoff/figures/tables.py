"""Markdown tables: the one writer behind every table the figure commands and docs print."""
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
