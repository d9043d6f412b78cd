"""Launchers (Slurm, Cloud TPU VM) by their generated commands; sweeps through
submitit's local executor; the Colab notebook executed top to bottom."""
import json
import os
import shlex
import subprocess
import sys

import pytest

import conftest
from launch import commands
from tradeoff import errors
from tiny_configs import TINY_CONFIG

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_slurm_script_runs_one_task_per_node_with_the_same_command_on_each():
  script = commands.sbatch_script(config='configs/cifar10_linf.py', workdir='/shared/runs/c10',
                               overrides=['config.eps=0.01'], nodes=2, gpus_per_node=8,
                               partition='gpu', time_limit='12:00:00',
                               setup=['source ~/venv/bin/activate'])
  lines = script.splitlines()
  for expected in ('#SBATCH --nodes=2', '#SBATCH --ntasks-per-node=1', '#SBATCH --gpus-per-node=8',
                   '#SBATCH --partition=gpu', '#SBATCH --time=12:00:00',
                   '#SBATCH --signal=TERM@120   # SIGTERM 2 min before the limit: checkpoint first',
                   'source ~/venv/bin/activate'):
    assert expected in lines, expected
  srun = [line for line in lines if line.startswith('srun')]
  assert len(srun) == 1
  assert shlex.split(srun[0])[2:] == ['python', '-m', 'tradeoff.main',
                                      '--config=configs/cifar10_linf.py',
                                      '--workdir=/shared/runs/c10', '--config.eps=0.01']
  assert not any('coordinator' in line for line in lines)  # JAX reads SLURM_* itself


def test_slurm_one_task_per_gpu_and_bad_values():
  script = commands.sbatch_script(config='c.py', workdir='/w', nodes=1, gpus_per_node=4,
                               tasks='per_gpu')
  assert '#SBATCH --ntasks-per-node=4' in script and '#SBATCH --gpus-per-task=1' in script
  with pytest.raises(errors.UserError, match="--tasks='per_host': valid choices are per_node"):
    commands.sbatch_script(config='c.py', workdir='/w', tasks='per_host')
  with pytest.raises(errors.UserError, match='--nodes=0 must be >= 1'):
    commands.sbatch_script(config='c.py', workdir='/w', nodes=0)


def test_the_slurm_dry_run_prints_the_script_and_submits_nothing(tmp_path):
  out = subprocess.run([sys.executable, '-m', 'launch.slurm', '--config=configs/mnist_linf.py',
                        f'--workdir={tmp_path / "w"}', '--nodes=2', '--dry_run'], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stdout.startswith('#!/bin/bash') and '#SBATCH --nodes=2' in out.stdout
  assert not (tmp_path / 'w').exists()


def test_tpu_vm_commands_run_the_same_checkout_on_every_worker():
  cmds = commands.tpu_vm_commands(tpu='v4-16-a', zone='us-central2-b', config='configs/cifar10_linf.py',
                         workdir='gs://b/runs/c10', repo='https://example.org/tradeoff.git',
                         ref='0123abc', data_dir='gs://b/tfds', create=True,
                         accelerator_type='v4-16')
  assert cmds[0][:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'create', 'v4-16-a']
  assert '--accelerator-type=v4-16' in cmds[0]
  setup, run = cmds[1], cmds[2]
  for cmd in (setup, run):
    assert cmd[:6] == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'v4-16-a']
    assert '--worker=all' in cmd and '--zone=us-central2-b' in cmd
  assert 'git clone -q https://example.org/tradeoff.git' in setup[-1]
  assert 'git checkout -q --detach 0123abc' in setup[-1] and '"jax[tpu]" -e .' in setup[-1]
  assert run[-1].endswith('TFDS_DATA_DIR=gs://b/tfds python3 -m tradeoff.main '
                          '--config=configs/cifar10_linf.py --workdir=gs://b/runs/c10')
  assert 'cd "$HOME/tradeoff"' in run[-1]
  with pytest.raises(errors.UserError, match='--repo is required'):
    commands.tpu_vm_commands(tpu='t', zone='z', config='c.py', workdir='gs://w', repo='',
                             ref='x')
  with pytest.raises(errors.UserError, match='inside the repository'):
    commands.tpu_vm_commands(tpu='t', zone='z', config='/home/me/c.py', workdir='gs://w',
                             repo='r', ref='x')
  with pytest.raises(errors.UserError, match='every worker must see the workdir'):
    commands.tpu_vm_commands(tpu='t', zone='z', config='configs/c.py', workdir='runs/x',
                             repo='r', ref='x')


@pytest.mark.slow
def test_the_tpu_vm_commands_run_on_a_local_worker(tmp_path, mnist_dir):
  """The generated worker commands, run by bash in a fresh home directory (what
  `gcloud ... ssh --worker=all --command=...` does on each worker): clone this
  repository at HEAD, then train the smoke config found in that checkout."""
  head = subprocess.run(['git', '-C', REPO, 'rev-parse', 'HEAD'], capture_output=True,
                        text=True, check=True).stdout.strip()
  cmds = commands.tpu_vm_commands(
      tpu='local', zone='z', config='configs/mnist_linf.py:smoke',
      workdir='gs://unused/run', repo=REPO, ref=head, data_dir=mnist_dir,
      install='true', overrides=['config.num_train_steps=2'])
  home = tmp_path / 'worker'
  home.mkdir()
  bin_dir = os.path.dirname(sys.executable)   # this environment's python3 stands for the worker's
  assert os.path.exists(os.path.join(bin_dir, 'python3'))
  env = {**os.environ, 'HOME': str(home), 'PATH': f'{bin_dir}:{os.environ["PATH"]}',
         'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': '--xla_force_host_platform_device_count=1'}
  env.pop('PYTHONPATH', None)
  setup, run = (c[-1].split('=', 1)[1] for c in cmds)
  for _ in range(2):   # the second time finds the checkout and only moves it to the commit
    p = subprocess.run(['bash', '-c', setup], cwd=str(tmp_path), env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr
  checkout = home / 'tradeoff'
  assert (checkout / 'configs' / 'mnist_linf.py').exists()
  assert subprocess.run(['git', '-C', str(checkout), 'rev-parse', 'HEAD'], capture_output=True,
                        text=True).stdout.strip() == head
  local_run = run.replace('--workdir=gs://unused/run', f'--workdir={tmp_path}/run')
  p = subprocess.run(['bash', '-c', local_run], cwd=str(tmp_path), env=env,
                     capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  results = json.load(open(tmp_path / 'run' / 'results.json'))
  assert results['train_steps'] == 2 and results['config']['data']['name'] == 'mnist'
  assert results['commit'] == head   # the checkout's code ran, not this one's


@pytest.fixture
def config_file(tmp_path):
  path = tmp_path / 'tiny.py'
  path.write_text(TINY_CONFIG)
  return str(path)


SWEEP = '''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = 'tiny_submitit'
  s.base = {config!r}
  s.overrides = ()
  s.grid = [(('eps', (0.0, 0.1)),)]
  s.budget = {{}}
  return s
'''


@pytest.mark.slow
def test_a_sweep_runs_through_submitit_and_skips_finished_runs(tmp_path, config_file):
  sweep = tmp_path / 'sweep.py'
  sweep.write_text(SWEEP.format(config=config_file))
  root, out = str(tmp_path / 'runs'), str(tmp_path / 'collected.json')
  cmd = [sys.executable, '-m', 'launch.sweep', f'--sweep={sweep}', f'--root={root}',
         f'--output={out}', '--executor=submitit_local', '--parallel=2']
  first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
  assert first.stdout.count('[done]') == 2
  record = json.load(open(out))
  assert record['num_finished'] == 2 and record['last_launch']['executor'] == 'submitit_local'
  assert os.listdir(os.path.join(root, 'tiny_submitit', 'submitit'))   # submitit's job files
  again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
  assert again.returncode == 0 and '[done]' not in again.stdout   # nothing to train
  assert json.load(open(out))['num_finished'] == 2


@pytest.mark.slow
def test_the_colab_notebook_is_in_sync_and_runs_top_to_bottom_in_smoke_mode(tmp_path,
                                                                           mnist_dir,
                                                                           monkeypatch):
  import jupytext  # pylint: disable=g-import-not-at-top
  import nbclient  # pylint: disable=g-import-not-at-top
  source = jupytext.read(os.path.join(REPO, 'launch', 'colab.py'))
  stored = jupytext.read(os.path.join(REPO, 'launch', 'colab.ipynb'))
  assert [c.source for c in stored.cells] == [c.source for c in source.cells], (
      'launch/colab.ipynb is out of date: run `jupytext --sync launch/colab.py`')
  params = [c for c in source.cells if 'parameters' in c.metadata.get('tags', [])]
  assert len(params) == 1
  params[0].source += (f'\nSMOKE = True\nDATA_DIR = {mnist_dir!r}\n'
                       f'WORKDIR = {str(tmp_path / "runs")!r}\n')
  # The kernel and the runs it starts get one CPU device, as on a Colab runtime.
  monkeypatch.setenv('XLA_FLAGS', conftest.xla_flags(1))
  nbclient.NotebookClient(source, timeout=600, kernel_name='python3',
                          resources={'metadata': {'path': REPO}}).execute()
  assert os.path.exists(tmp_path / 'runs' / 'mnist_smoke' / 'results.json')
  assert os.path.exists(tmp_path / 'runs' / 'figures' / 'runs.png')


def _notebook_cell(containing: str) -> str:
  import jupytext  # pylint: disable=g-import-not-at-top
  cells = [c.source for c in jupytext.read(os.path.join(REPO, 'launch', 'colab.py')).cells
           if c.cell_type == 'code' and containing in c.source]
  assert len(cells) == 1, containing
  return cells[0]


def test_the_notebook_finds_v5e_tpus_and_refuses_the_long_run_on_cpu(tmp_path, monkeypatch):
  import ast  # pylint: disable=g-import-not-at-top
  cell = _notebook_cell('def accelerator()')
  fn = next(n for n in ast.parse(cell).body
            if isinstance(n, ast.FunctionDef) and n.name == 'accelerator')
  for var in ('TPU_ACCELERATOR_TYPE', 'COLAB_TPU_ADDR'):
    monkeypatch.delenv(var, raising=False)
  real_exists, real_isdir, real_listdir = os.path.exists, os.path.isdir, os.listdir

  def runtime(devices: dict[str, list[str]]) -> str:
    """accelerator() on a host whose /dev holds `devices` ({dir or file: entries})."""
    fake_os = type(os)('fake_os')
    fake_os.environ = os.environ
    fake_os.listdir = lambda p: devices[p] if p in devices else real_listdir(p)
    fake_os.path = type(os)('fake_path')
    fake_os.path.exists = lambda p: p in devices or (not p.startswith('/dev') and real_exists(p))
    fake_os.path.isdir = lambda p: p in devices or (not p.startswith('/dev') and real_isdir(p))
    namespace = {'os': fake_os}
    exec(compile(ast.Module([fn], []), 'colab.py', 'exec'), namespace)  # pylint: disable=exec-used
    return namespace['accelerator']()
  assert runtime({'/dev/vfio': ['0', 'vfio']}) == 'tpu'      # v5e / v5p / v6e hosts
  assert runtime({'/dev/accel0': []}) == 'tpu'                 # v2-v4 hosts
  assert runtime({'/dev/vfio': ['vfio']}) == 'cpu'             # the VFIO control node alone
  assert runtime({'/dev/nvidia0': []}) == 'gpu'
  assert runtime({}) == 'cpu'

  cell = _notebook_cell("train('configs/cifar10_linf.py'")
  trained = []
  namespace = {'SMOKE': False, 'BACKEND': 'cpu', 'ALLOW_CPU': False, 'WORKDIR': str(tmp_path),
               'os': os, 'train': lambda *a: trained.append(a) or {'clean_accuracy': 0.5,
                                                                   'robust_accuracy': 0.4}}
  with pytest.raises(RuntimeError, match='no accelerator here'):
    exec(cell, dict(namespace))  # pylint: disable=exec-used
  assert not trained
  exec(cell, dict(namespace, ALLOW_CPU=True))  # pylint: disable=exec-used
  exec(cell, dict(namespace, BACKEND='tpu'))  # pylint: disable=exec-used
  assert len(trained) == 2
