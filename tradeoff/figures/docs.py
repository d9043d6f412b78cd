r"""The tables of docs/*.md, regenerated from result files.

    python -m tradeoff.figures docs            # rewrite every generated table in docs/
    python -m tradeoff.figures docs --check    # fail if one differs from its result file

A generated table sits between two comment lines that name its generator and
its result file:

    <!-- table: size_sweep figures/results/figure6_mnist_linf.json -->
    | ε_train | n = 100 | ... |
    <!-- end table -->

and everything between them is replaced by what the generator makes of the file,
so a number in a table is never typed by hand. The prose around a table
quotes the same files.
"""
from __future__ import annotations

import collections
import glob
import os
import re

import numpy as np

from tradeoff.figures import common
from tradeoff.figures import tables

_BLOCK = re.compile(r'(<!-- table: (\S+)((?: \S+)*) -->\n)(.*?)(<!-- end table -->)', re.S)
GENERATORS = {}


def generator(name):
  def register(fn):
    GENERATORS[name] = fn
    return fn
  return register


def _finished(res: dict) -> list[dict]:
  return [r for r in res['runs'] if r['status'] == 'finished']


def _seeds_cell(values: list[tuple[int, float]], digits: int) -> str:
  """One value, or the mean of several seeds with their range."""
  values = sorted(values)
  if len(values) == 1:
    return tables.pct(values[0][1], digits)
  accs = [v for _, v in values]
  return (f'{tables.pct(float(np.mean(accs)), digits)} '
          f'({100 * min(accs):.{digits}f}–{100 * max(accs):.{digits}f})')


def _eps_key(r: dict) -> float:
  return float(r['train_attack']['eps'])


def _robust_attack(res: dict) -> str:
  """The evaluation attack of a sweep's robust numbers (that of its largest ε)."""
  return common.attack_label(max(_finished(res), key=_eps_key)['eval_attack'])


@generator('size_sweep')
def size_sweep(path: str, metric: str = 'clean', digits: str = '1') -> str:
  """Training ε × training-set size: `metric` accuracy ('clean' or 'robust' at the
  model's own ε), one seed's value or the seeds' mean (min–max)."""
  res = common.read_json(path)
  cells = collections.defaultdict(list)
  for r in _finished(res):
    cells[(_eps_key(r), r['point']['data.train_size'])].append(
        (r['point'].get('seed', 0), r[f'{metric}_accuracy']))
  epss = sorted({e for e, _ in cells})
  sizes = sorted({n for _, n in cells})
  norm = _finished(res)[0]['eval_attack']['norm']
  label = f'ε_train ({norm})'
  if metric == 'robust':
    label += ', ' + _robust_attack(res)
  header = [label] + [f'n = {n}' for n in sizes]
  rows = [[common.fmt_eps(e)] + [_seeds_cell(cells[(e, n)], int(digits)) if cells[(e, n)]
                                 else '' for n in sizes] for e in epss]
  return tables.markdown(header, rows)


@generator('reevaluated_sweep')
def reevaluated_sweep(path: str, digits: str = '1') -> str:
  """A re-evaluated sweep (`figures reevaluate`): per robust cell (training ε ×
  training-set size, seeds averaged) the robust accuracy under the run's own
  attack, under the re-evaluation's, and the change in points. A cell whose runs
  are not all re-evaluated is '–', so the table never mixes attacks."""
  res = common.read_json(path)
  runs = [r for r in _finished(res) if _eps_key(r) > 0]
  cells = collections.defaultdict(list)
  for r in runs:
    cells[(_eps_key(r), r['point']['data.train_size'])].append(r)
  d = int(digits)

  def cell(rs):
    if not rs or not all('previous_evaluation' in r for r in rs):
      return '–'
    before = float(np.mean([r['previous_evaluation']['robust_accuracy'] for r in rs]))
    after = float(np.mean([r['robust_accuracy'] for r in rs]))
    return (f'{100 * before:.{d}f} → {tables.pct(after, d)} '
            f'({100 * (after - before):+.{d}f})')

  done = [r for r in runs if 'previous_evaluation' in r]
  if not done:
    raise ValueError(f'{path}: no run has been re-evaluated (no previous_evaluation).')
  before_label = {common.attack_label(r['previous_evaluation']['eval_attack']) for r in done}
  after_label = {common.attack_label(r['eval_attack']) for r in done}
  epss = sorted({e for e, _ in cells})
  sizes = sorted({n for _, n in cells})
  norm = runs[0]['eval_attack']['norm']
  header = ([f"ε_train ({norm}): {' / '.join(sorted(before_label))} → "
             f"{' / '.join(sorted(after_label))}"] + [f'n = {n}' for n in sizes])
  return tables.markdown(header, [[common.fmt_eps(e)] + [cell(cells[(e, n)]) for n in sizes]
                                  for e in epss])


@generator('eps_sweep')
def eps_sweep(path: str, digits: str = '2') -> str:
  """Standard accuracy and robust accuracy at the model's own ε, by training ε."""
  res = common.read_json(path)
  by_eps = collections.defaultdict(list)
  for r in _finished(res):
    by_eps[_eps_key(r)].append(r)
  epss = sorted(by_eps)
  d = int(digits)

  def clean(runs):
    runs = sorted(runs, key=lambda r: r['point'].get('seed', 0))
    if len(runs) == 1:
      return tables.pct(runs[0]['clean_accuracy'], d)
    seeds = ' / '.join(str(r['point'].get('seed', 0)) for r in runs)
    return (' / '.join(tables.pct(r['clean_accuracy'], d) for r in runs)
            + f' (seeds {seeds})')

  def robust(e, runs):
    seed0 = min(runs, key=lambda r: r['point'].get('seed', 0))
    return '–' if e == 0 else tables.pct(seed0['robust_accuracy'], 1)

  norm = _finished(res)[0]['eval_attack']['norm']
  attack = _robust_attack(res)
  header = [f'ε_train ({norm})'] + [common.fmt_eps(e) for e in epss]
  return tables.markdown(header, [['standard accuracy'] + [clean(by_eps[e]) for e in epss],
                                  [f'robust accuracy at own ε ({attack})'] +
                                  [robust(e, by_eps[e]) for e in epss]])


@generator('grid_runs')
def grid_runs(path: str, digits: str = '1') -> str:
  """Every finished run of a sweep: one row per grid point (seeds side by side),
  its standard and robust accuracy."""
  res = common.read_json(path)
  runs = _finished(res)
  if not runs:
    raise ValueError(f'{path}: no finished run.')
  keys = [k for k in runs[0]['point'] if k != 'seed']
  seeds = sorted({r['point'].get('seed', 0) for r in runs})
  cells = {}
  for r in runs:
    row = tuple(r['point'][k] for k in keys)
    cells.setdefault(row, {})[r['point'].get('seed', 0)] = (
        f"{tables.pct(r['clean_accuracy'], int(digits))} / "
        f"{tables.pct(r['robust_accuracy'], int(digits))}")
  attack = common.attack_label(runs[0]['eval_attack'])
  header = ([f'{keys[0]} (robust: {attack})'] + keys[1:]
            + [f'seed {s}: standard / robust' for s in seeds])
  body = [[f'{v:g}' if isinstance(v, float) else str(v) for v in row]
          + [cells[row].get(s, '–') for s in seeds] for row in sorted(cells)]
  return tables.markdown(header, body)


@generator('reevaluated_runs')
def reevaluated_runs(path: str, digits: str = '1') -> str:
  """Every finished run of a re-evaluated sweep, one row each in the file's order:
  its grid point, standard accuracy, robust accuracy under its own attack and
  under the re-evaluation's, and the change in points. A run with no robust
  number of its own (evaluated at ε = 0) has '–' for all three."""
  res = common.read_json(path)
  runs = _finished(res)
  done = [r for r in runs if 'previous_evaluation' in r]
  if not done:
    raise ValueError(f'{path}: no run has been re-evaluated (no previous_evaluation).')
  unfinished = [r['name'] for r in runs
                if float(r['eval_attack']['eps']) > 0 and 'previous_evaluation' not in r]
  if unfinished:
    raise ValueError(f'{path}: runs not re-evaluated yet: {unfinished}; finish '
                     '`python -m tradeoff.figures reevaluate` first.')
  before = ' / '.join(sorted({common.attack_label(r['previous_evaluation']['eval_attack'])
                              for r in done}))
  after = ' / '.join(sorted({common.attack_label(r['eval_attack']) for r in done}))
  d = int(digits)
  body = []
  for r in runs:
    point = ', '.join(f'{k} = {v:g}' if isinstance(v, float) else f'{k} = {v}'
                      for k, v in r['point'].items() if not str(k).endswith('_from'))
    if 'previous_evaluation' in r:
      b, a = r['previous_evaluation']['robust_accuracy'], r['robust_accuracy']
      cells = [tables.pct(b, d), tables.pct(a, d), f'{100 * (a - b):+.{d}f}']
    else:
      cells = ['–'] * 3
    body.append([point, tables.pct(r['clean_accuracy'], d), *cells])
  return tables.markdown(['run', 'standard', f'robust: {before}', f'robust: {after}', 'change'],
                         body)


@generator('attack_cost')
def attack_cost(path: str) -> str:
  """`python -m tradeoff.bench --mode=attacks`: AutoAttack's cost against PGD-100 × 5."""
  from tradeoff.bench import attacks  # pylint: disable=g-import-not-at-top
  return attacks.attack_cost_table(common.read_json(path))


@generator('autoattack_reference')
def autoattack_reference(path: str) -> str:
  """`python -m tradeoff.bench --mode=autoattack_reference`: both AutoAttacks by stage."""
  from tradeoff.bench import reference  # pylint: disable=g-import-not-at-top
  return reference.reference_table(common.read_json(path))


@generator('loop')
def loop(path: str) -> str:
  """`python -m tradeoff.bench --mode=loop`: an attack's gradient loop, ms per gradient."""
  from tradeoff.bench import loop as bench_loop  # pylint: disable=g-import-not-at-top
  return bench_loop.loop_table(common.read_json(path))


def _reference_results(results_dir: str) -> list[dict]:
  """The accuracy table's result files in the paper's dataset order."""
  files = [os.path.join(results_dir, f'reference_{d}.json')
           for d in ('mnist', 'fashion_mnist', 'cifar10')]
  return [common.read_json(f) for f in files if os.path.exists(f)]


@generator('reference_autoattack')
def reference_autoattack(results_dir: str = 'figures/results') -> str:
  """The accuracy table's AutoAttack evaluations, stage by stage."""
  return tables.autoattack_stages_table(_reference_results(results_dir))


@generator('reference')
def reference_table(results_dir: str = 'figures/results') -> str:
  """The accuracy table of `python -m tradeoff.figures reference`."""
  return tables.reference_table(_reference_results(results_dir))


@generator('theory_svm')
def theory_svm(path: str) -> str:
  s = common.read_json(path)['summary']
  return tables.markdown(
      ['model', 'standard accuracy', 'ℓ∞ accuracy at ε = 2η', 'paper'],
      [['standard SVM (ε_train = 0)', tables.pct(s['standard_svm']['standard_accuracy'], 2),
        tables.pct(s['standard_svm']['adversarial_accuracy'], 2), s['paper']['standard_svm']],
       ['adversarial SVM (ε_train = 2η)',
        tables.pct(s['adversarial_svm_eps_2eta']['standard_accuracy'], 2),
        tables.pct(s['adversarial_svm_eps_2eta']['adversarial_accuracy'], 2),
        s['paper']['adversarial_svm']]])


_ROLE_NAMES = {'standard': 'standard', 'robust_linf': 'ℓ∞-robust', 'robust_l2': 'ℓ2-robust'}


def _train_eps(rec: dict) -> str:
  e = rec['model']['train_attack']['eps']
  return '' if not e else f', ε = {common.fmt_eps(e)}'


@generator('alignment')
def alignment(path: str) -> str:
  """Figure 2's alignment scores per model."""
  res = common.read_json(path)
  rows = [[f"{_ROLE_NAMES.get(role, role)}{_train_eps(rec)} "
           f"({tables.pct(rec['model']['clean_accuracy'], 2)})",
           f"{rec['alignment']['abs_pearson']:.2f}", f"{rec['alignment']['abs_grad_pearson']:.2f}"]
          for role, rec in res['models'].items()]
  return tables.markdown(['model (clean acc.)', 'alignment \\|Pearson(∇ₓ, x)\\|',
                          'Pearson(\\|∇ₓ\\|, x)'], rows)


@generator('transfer')
def transfer(path: str) -> str:
  """Figure 3's large-ε targeted examples: success and transfer to the independent model."""
  res = common.read_json(path)
  rows = []
  for threat in res['threats']:
    for role, rec in threat['models'].items():
      rows.append([f"{'ℓ∞' if threat['norm'] == 'linf' else 'ℓ2'} ε = "
                   f"{common.fmt_eps(threat['eps'])}", _ROLE_NAMES.get(role, role),
                   tables.pct(rec['target_success']), tables.pct(rec['independent_says_target']),
                   tables.pct(rec['independent_says_target_given_success']),
                   tables.pct(rec['independent_says_true_class'])])
  return tables.markdown(['large-ε targeted attack', 'against', 'reaches the target',
                          'independent model says target',
                          '… among the examples that reached it',
                          'independent model says true class'], rows)


@generator('binary')
def binary(path: str) -> str:
  """Figure 5: the linear models' accuracies and weight mass on weakly correlated pixels."""
  res = common.read_json(path)
  rows = []
  for name, m in res['models'].items():
    mass = m['weight_mass_below']
    eps = m['engine']['eval_attack']['eps']
    rows.append([name if not m['eps_train'] else f"{name} (ε = {m['eps_train']:g})",
                 tables.pct(m['engine']['clean_accuracy'], 2),
                 tables.pct(m['engine']['robust_accuracy'], 2),
                 ' / '.join(f'{100 * mass[k]:.3g} %' for k in sorted(mass, key=float))])
  thresholds = ' / '.join(sorted(res['models']['standard']['weight_mass_below'], key=float))
  return tables.markdown(['model', 'clean', f'robust (ε = {eps:g})',
                          f'share of ‖w‖₁ on pixels with \\|corr\\| < {thresholds}'], rows)


@generator('engine')
def engine(*paths: str) -> str:
  """Single runs' results.json: training, accuracies, evaluation attack, times."""
  rows = []
  for path in paths:
    r = common.read_json(path)
    tr, ev = r['train_attack'], r['eval_attack']
    rows.append([os.path.basename(path).removesuffix('.json'),
                 f"{r['train_steps']} steps, {tr['name'].upper()} (step {tr['step_size']:g}), "
                 f"ε warm-up {tr.get('eps_warmup_steps', 0)} steps",
                 tables.pct(r['clean_accuracy']), tables.pct(r['robust_accuracy']),
                 f"{ev['name'].upper()} step {ev['step_size']:g}, {ev['restarts']} restarts, "
                 f"first {r['num_examples']} test images",
                 f"{r['train_time_s'] / 60:.1f} / {r['eval_time_s'] / 60:.1f} min"])
  return tables.markdown(['run', 'training', 'clean', 'robust',
                          f"evaluation attack ({'ℓ∞' if ev['norm'] == 'linf' else 'ℓ2'} "
                          f"ε = {ev['eps']:g})", 'train / eval time'], rows)


@generator('bench')
def bench(path: str) -> str:
  """A stored `python -m tradeoff.bench` record, as `--show` prints it."""
  from tradeoff.bench import records  # pylint: disable=g-import-not-at-top
  text = records.format_record(common.read_json(path))
  # The header line becomes a sentence above the table.
  return '\n'.join(line for line in text.splitlines() if line.startswith('|')) + '\n'


@generator('bench_flags')
def bench_flags(pattern: str) -> str:
  """PGD-7 throughput under each XLA_FLAGS setting, one bench record each."""
  rows = []
  for path in sorted(glob.glob(pattern)):
    out = common.read_json(path)
    step = next(s for s in out['steps'] if s['pgd_steps'] == 7)
    peak = out['matmul_peak_gflops']
    rows.append([f"`{out['xla_flags'] or '(none)'}`", f"{step['images_per_s']:.1f}",
                 f'{peak:.1f}', tables.pct(step['gflops'] / peak),
                 tables.pct(step['dense_gflops'] / peak)])
  return tables.markdown(['XLA_FLAGS', 'PGD-7 images/s', 'peak GFLOP/s', 'share (XLA count)',
                          'share (dense)'], rows)


@generator('bench_xla')
def bench_xla(*paths: str) -> str:
  """`python -m tradeoff.bench_xla` records side by side, one per JAX release."""
  rows = []
  for path in paths:
    out = common.read_json(path)
    cells = [f"jax {out['jax']}"]
    for s in out['steps']:
      cells.append(f"{s['images_per_s']:.1f} images/s, {tables.pct(s['share_of_peak'])}")
    rows.append(cells)
  names = [s['name'] for s in common.read_json(paths[0])['steps']]
  return tables.markdown(['JAX'] + [f'{n} step' for n in names], rows)


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def render(text: str) -> str:
  """`text` with every generated table block rebuilt from its result files
  (paths in the markers are relative to the repository root)."""
  def rebuild(m):
    name = m.group(2)
    args = [os.path.join(REPO, a) if '/' in a else a for a in m.group(3).split()]
    if name not in GENERATORS:
      raise ValueError(f'Unknown table generator {name!r} in {m.group(1).strip()}; valid '
                       f'choices: {", ".join(sorted(GENERATORS))}.')
    return m.group(1) + GENERATORS[name](*args) + m.group(5)
  return _BLOCK.sub(rebuild, text)


def run(docs_dir: str = 'docs', check: bool = False) -> list[str]:
  """Rewrites (or, with check, compares) the generated tables of docs_dir/*.md."""
  stale = []
  paths = sorted(glob.glob(os.path.join(docs_dir, '*.md')))
  for path in paths:
    with open(path) as f:
      text = f.read()
    new = render(text)
    if new != text:
      stale.append(path)
      if not check:
        common.write_text(path, new)
  if check and stale:
    raise ValueError(f'Generated tables differ from their result files in {stale}; run '
                     f'`python -m tradeoff.figures docs`.')
  return paths
