"""Errors in what the user asked for, as opposed to bugs in tradeoff.

A `UserError` (a bad config value, a missing file or dataset, an attack that
cannot do its job) is reported by every command line entry point as one line
naming the bad value and the valid choices (see `cli.run`); anything else is a
bug and keeps its traceback. `UserError` subclasses `ValueError`, so library
callers can catch it as one.
"""


class UserError(ValueError):
  """The user's config, flags or files ask for something invalid."""


class DataNotFoundError(UserError, FileNotFoundError):
  """A dataset or file the run needs is not where the config says."""


class Interrupted(Exception):
  """A run stopped by SIGTERM / SIGINT after saving a checkpoint; rerun to resume."""

  def __init__(self, message: str, signum: int):
    super().__init__(message)
    self.signum = signum
