"""Provenance: the commit recorded in result files."""
import subprocess

import pytest

from tradeoff import provenance


def _no_git(monkeypatch):
  def fail(*args, **kwargs):
    raise FileNotFoundError('git')
  monkeypatch.setattr(provenance.subprocess, 'run', fail)
  provenance.git_commit.cache_clear()


def test_git_commit_of_this_checkout():
  provenance.git_commit.cache_clear()
  head = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                        cwd=provenance.os.path.dirname(provenance.__file__)).stdout.strip()
  if not head:
    pytest.skip('not a git checkout')
  assert provenance.git_commit().split('-')[0] == head


def test_commit_named_by_environment_without_git(monkeypatch):
  _no_git(monkeypatch)
  monkeypatch.setenv('TRADEOFF_GIT_COMMIT', 'abc123')
  try:
    assert provenance.git_commit() == 'abc123 (from TRADEOFF_GIT_COMMIT)'
  finally:
    provenance.git_commit.cache_clear()


def test_unknown_commit_without_git_or_environment(monkeypatch):
  _no_git(monkeypatch)
  monkeypatch.delenv('TRADEOFF_GIT_COMMIT', raising=False)
  try:
    assert provenance.git_commit() == 'unknown'
  finally:
    provenance.git_commit.cache_clear()
