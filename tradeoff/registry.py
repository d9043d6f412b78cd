"""Name -> function registries, so configs hold names and code holds objects.

Every pluggable piece of tradeoff (datasets, models, losses) is looked up by the
string in its config. An unknown name fails with the valid choices; a name of
the form ``package.module:function`` imports a user's own function, so a new
loss needs no edit of this package.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, TypeVar

from tradeoff import errors

T = TypeVar('T')


class Registry(Generic[T]):
  """A named collection of constructors, e.g. ``LOSSES = Registry('loss')``."""

  def __init__(self, kind: str):
    self.kind = kind
    self._items: dict[str, T] = {}

  def register(self, name: str) -> Callable[[T], T]:
    """Decorator: ``@LOSSES.register('trades')``."""

    def add(obj: T) -> T:
      if name in self._items:
        raise errors.UserError(f'{self.kind} {name!r} is already registered.')
      self._items[name] = obj
      return obj

    return add

  def names(self) -> list[str]:
    return sorted(self._items)

  def get(self, name: str) -> T:
    """Returns the entry called `name`, or imports ``package.module:attr``.

    Raises:
      ValueError: `name` is neither registered nor an importable
        ``module:attr`` path; the message lists the valid names.
    """
    if name in self._items:
      return self._items[name]
    if ':' in name:
      module_name, _, attr = name.partition(':')
      try:
        module = importlib.import_module(module_name)
      except ImportError as e:
        raise errors.UserError(
            f'Cannot import module {module_name!r} for {self.kind} {name!r}: {e}') from e
      if not hasattr(module, attr):
        raise errors.UserError(f'Module {module_name!r} has no attribute {attr!r} '
                         f'(asked for {self.kind} {name!r}).')
      return getattr(module, attr)
    raise errors.UserError(f'Unknown {self.kind} {name!r}. Valid choices: '
                     f'{", ".join(self.names())}, or "package.module:function".')

  def __contains__(self, name: str) -> bool:
    return name in self._items


def check_at_least(kind: str, **bounds: tuple) -> None:
  """Raises a UserError listing every bound if one value is below its minimum:
  check_at_least('FAB-T', eps=(eps, 0), num_steps=(k, 1)) ->
  'FAB-T needs eps >= 0, num_steps >= 1; got eps=..., num_steps=....'"""
  if any(value < minimum for value, minimum in bounds.values()):
    need = ', '.join(f'{name} >= {minimum}' for name, (_, minimum) in bounds.items())
    got = ', '.join(f'{name}={value}' for name, (value, _) in bounds.items())
    raise errors.UserError(f'{kind} needs {need}; got {got}.')


def check_choice(kind: str, value, choices) -> None:
  """Raises ValueError naming `value` and the valid `choices` if not among them."""
  if value not in choices:
    raise errors.UserError(f'Unknown {kind} {value!r}. Valid choices: '
                     f'{", ".join(map(str, choices))}.')
