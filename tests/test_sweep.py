"""launch.sweep and launch.grids: grid expansion, skip / resume, result collection, and the figure from it."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from launch import grids
from tradeoff import errors
from tradeoff.figures import sweeps as sweep_figs
from tiny_configs import TINY_CONFIG

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


SWEEP = '''
import ml_collections

def get_config(arg=None):
  s = ml_collections.ConfigDict()
  s.name = 'tiny'
  s.base = {base!r}
  s.overrides = (('optim.learning_rate', 0.05),)
  s.grid = [(('eps', (0.0, 0.1)), ('data.train_size', (20,)), ('seed', (0, 1))),
            (('eps', (0.0,)), ('data.train_size', (20, 40)), ('seed', (0,)))]
  s.budget = {{'steps': 4, 'min_epochs': 2}}
  return s
'''


@pytest.fixture
def sweep_file(tmp_path):
  base = tmp_path / 'base.py'
  base.write_text(TINY_CONFIG)
  path = tmp_path / 'tiny_sweep.py'
  path.write_text(SWEEP.format(base=str(base)))
  return str(path)


def test_expand_takes_the_union_of_blocks_and_applies_overrides_and_budget(sweep_file, tmp_path):
  sweep = grids.load_sweep(sweep_file)
  runs = grids.expand(sweep, str(tmp_path / 'root'))
  names = [r.name for r in runs]
  # 2·1·2 + 1·2·1 = 6 points, one of which (eps 0, n 20, seed 0) is in both blocks
  assert len(names) == len(set(names)) == 5
  assert names[0] == 'eps=0,data.train_size=20,seed=0'
  assert runs[0].workdir == os.path.join(str(tmp_path / 'root'), 'tiny', names[0])
  c = grids.run_config(sweep, runs[-1])  # n = 40: 2 epochs of batch 16 = 5 steps > 4
  assert (c.data.train_size, c.num_train_steps, c.optim.learning_rate) == (40, 5, 0.05)
  assert grids.run_config(sweep, runs[0]).num_train_steps == 4
  bad = grids.load_sweep(sweep_file)
  bad.grid = [(('optim.learning_rat', (0.1,)),)]
  with pytest.raises(errors.UserError, match='learning_rat'):
    grids.run_config(bad, grids.expand(bad, 'r')[0])


def _launch(sweep_file, root, out, *extra):
  cmd = [sys.executable, '-m', 'launch.sweep', f'--sweep={sweep_file}', f'--root={root}',
         f'--output={out}', '--parallel=2', *extra]
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return proc.stdout


def test_sweep_runs_skips_finished_resumes_partial_and_collects(sweep_file, tmp_path):
  root, out = str(tmp_path / 'root'), str(tmp_path / 'tiny.json')
  log = _launch(sweep_file, root, out)
  assert log.count('[start]') == 5 and log.count('[done]') == 5
  res = json.load(open(out))
  assert res['num_runs'] == res['num_finished'] == 5
  assert {r['status'] for r in res['runs']} == {'finished'}
  first = res['runs'][0]
  assert first['config']['eps'] == 0.0 and first['config']['optim']['learning_rate'] == 0.05
  assert 0.0 <= first['robust_accuracy'] <= first['clean_accuracy'] <= 1.0
  assert first['commit'] and first['device'] and first['eval_attack']['name']
  launched = res['last_launch']     # the grid's elapsed time, not the runs' summed time
  assert (launched['parallel'], launched['trained_runs'], launched['partial_runs_resumed']) == (
      2, 5, 0)
  assert 0 < launched['wall_time_s'] and launched['commit'] and launched['device']

  log = _launch(sweep_file, root, out)  # everything finished: nothing is trained
  assert '[start]' not in log and "'finished': 5" in log
  assert json.load(open(out))['last_launch'] == launched   # kept: this one trained nothing
  _launch(sweep_file, root, out, '--collect_only')
  assert json.load(open(out))['last_launch'] == launched

  # a run killed after its last checkpoint but before results.json resumes, not restarts
  victim = res['runs'][3]['workdir']
  os.remove(os.path.join(victim, 'results.json'))
  log = _launch(sweep_file, root, out, '--dry_run')
  assert 'partial' in log
  log = _launch(sweep_file, root, out)
  assert log.count('[start]') == 1 and res['runs'][3]['name'] in log
  resumed = json.load(open(os.path.join(victim, 'results.json')))
  assert resumed['resumed_from_step'] == resumed['train_steps']

  # a sweep that reuses 'tiny' trains only the run 'tiny' lacks
  sweep2 = tmp_path / 'tiny2_sweep.py'
  sweep2.write_text(open(sweep_file).read().replace("s.name = 'tiny'", "s.name = 'tiny2'")
                    .replace("s.grid = [", "s.reuse = ('tiny',)\n  s.grid = [(('eps', (0.0,)), "
                             "('data.train_size', (20,)), ('seed', (0, 2)))]\n  _ = ["))
  out2 = str(tmp_path / 'tiny2.json')
  log = _launch(str(sweep2), root, out2)
  assert log.count('[start]') == 1 and 'seed=2' in log
  res2 = json.load(open(out2))
  assert res2['num_finished'] == 2
  assert res2['runs'][0]['reused_from'] == 'tiny'
  assert res2['runs'][0]['workdir'] == res['runs'][0]['workdir']
  assert 'reused_from' not in res2['runs'][1]

  curves = sweep_figs.size_curves(json.load(open(out)))
  assert sorted(curves) == [0.0, 0.1]
  assert curves[0.0]['n'] == [20, 40] and len(curves[0.0]['clean'][0]) == 2  # two seeds
  png = sweep_figs.run('figure1', out, str(tmp_path / 'figs'))[0]
  assert os.path.getsize(png) > 10_000
  by_eps = sweep_figs.eps_curve(json.load(open(out)))
  assert by_eps['eps'] == [0.0, 0.1] and [len(v) for v in by_eps['clean']] == [3, 2]
  png = sweep_figs.run('figure7', out, str(tmp_path / 'figs7'))[0]
  assert os.path.getsize(png) > 10_000
  rows = sweep_figs.table([out]).strip().splitlines()
  assert len(rows) == 2 + 5 and rows[2].startswith('| tiny | synthetic | linf | 0 |')
  rows = sweep_figs.table([out], sweep_figs.parse_where(['data.train_size=20', 'seed=1']))
  assert len(rows.strip().splitlines()) == 2 + 2     # eps 0 and 0.1 at n = 20, seed 1
  assert len(sweep_figs.table([out], {'eps': '0.10'}).strip().splitlines()) == 2 + 2
  with pytest.raises(ValueError, match='KEY=VALUE'):
    sweep_figs.parse_where(['seed'])


def test_bad_sweep_name_and_missing_fields_are_rejected(tmp_path):
  path = tmp_path / 's.py'
  path.write_text(textwrap.dedent('''
      import ml_collections
      def get_config(arg=None):
        return ml_collections.ConfigDict({'name': 'a b', 'base': 'x.py', 'grid': []})
  '''))
  with pytest.raises(ValueError, match='plain directory name'):
    grids.load_sweep(str(path))
  path.write_text(textwrap.dedent('''
      import ml_collections
      def get_config(arg=None):
        return ml_collections.ConfigDict({'name': 'a'})
  '''))
  with pytest.raises(ValueError, match="lacks 'base'"):
    grids.load_sweep(str(path))


@pytest.mark.parametrize('name, eps', [('rst_mnist', 0.3), ('rst_fashion_mnist', 0.1)])
def test_robust_self_training_sweeps_evaluate_every_run_at_their_eps(name, eps, monkeypatch):
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  s = grids.load_sweep(f'configs/sweeps/{name}.py')
  runs = grids.expand(s, 'runs/sweeps')
  methods = {}
  for run in runs:
    c = configlib.resolve(grids.run_config(s, run))
    assert (c.eval_attack.norm, c.eval_attack.eps) == ('linf', pytest.approx(eps)), run.name
    teacher = c.data.pseudo_label_from
    method = 'rst' if teacher else ('adversarial' if c.attack.eps > 0 else 'standard')
    n = c.data.labelled_size or c.data.train_size
    methods[(method, n)] = run.workdir
    if teacher:   # the standard run on the same labelled examples, listed before it
      assert teacher == methods[('standard', n)]
  assert sorted(methods) == [(m, n) for m in ('adversarial', 'rst', 'standard')
                             for n in (1000, 10000)]
