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


def test_dirty_means_code_changed_not_results(tmp_path):
  """A result file rewritten under figures/ leaves the commit clean; code does not."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  if not shutil.which('git'):
    pytest.skip('no git')
  (tmp_path / 'tradeoff').mkdir()
  (tmp_path / 'figures' / 'results').mkdir(parents=True)
  shutil.copy(provenance.__file__, tmp_path / 'tradeoff' / 'provenance.py')
  (tmp_path / 'figures' / 'results' / 'r.json').write_text('{}')
  git = lambda *a: subprocess.run(['git', '-C', str(tmp_path), *a], check=True,
                                  capture_output=True)
  git('init', '-q')
  git('add', '.')
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'c')
  spec = importlib.util.spec_from_file_location('copied_provenance',
                                                tmp_path / 'tradeoff' / 'provenance.py')
  copy = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(copy)
  head = subprocess.run(['git', '-C', str(tmp_path), 'rev-parse', 'HEAD'], capture_output=True,
                        text=True, check=True).stdout.strip()
  (tmp_path / 'figures' / 'results' / 'r.json').write_text('{"rewritten": 1}')
  assert copy.git_commit() == head
  copy.git_commit.cache_clear()
  with open(tmp_path / 'tradeoff' / 'provenance.py', 'a') as f:
    f.write('\n# changed\n')
  assert copy.git_commit() == head + '-dirty'
