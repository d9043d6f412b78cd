"""Markdown tables: the one writer behind every table the figure commands and docs print."""
from __future__ import annotations

from tradeoff import labels
from tradeoff import stats
from tradeoff.figures import common

# Shared with tradeoff.bench, which does not import the figure modules.
markdown = labels.markdown
pct = labels.pct


def _with_interval(accuracy: float, n: int) -> str:
  """'98.83 % (98.6–99.0)': the accuracy and its 95 % Wilson interval over n points."""
  lo, hi = stats.accuracy_interval(accuracy, n)
  return f'{accuracy:.2%} ({100 * lo:.1f}–{100 * hi:.1f})'


def _params(n) -> str:
  return '?' if not n else f'{n / 1e6:.2f} M' if n >= 1e6 else f'{n / 1e3:.0f} k'


def _threat_order(rows: list[dict]) -> list[dict]:
  """A dataset's rows by threat (ℓ∞, then ℓ2), the standard model first: the
  order of the table whatever order the evaluations were run in."""
  norms = ('linf', 'l2')
  return sorted(rows, key=lambda r: (norms.index(r['threat_norm']) if r['threat_norm'] in norms
                                     else len(norms), r['role'] != 'standard'))


def reference_table(results: list[dict]) -> str:
  """The accuracy table from reference_<dataset>.json records (tradeoff.figures reference)."""
  rows = []
  for res in results:
    for r in _threat_order(res['rows']):
      atk = r['eval_attack']
      copy = ' (approximate copy)' if (r.get('data') or {}).get('approximate_copy') else ''
      model = 'standard' if r['role'] == 'standard' else 'robust'
      aa = r.get('autoattack')
      aa_cols = _autoattack_cols(r['robust_accuracy'], aa, r.get('autoattack_unfinished'))
      rows.append([
          f"{r['dataset']}{copy}", f"{r['threat_norm']} ε = {common.fmt_eps(r['threat_eps'])}",
          f"{model} ({common.fmt_eps(r['train_attack']['eps'])})", _params(r.get('num_params')),
          _with_interval(r['clean_accuracy'], r['num_examples']),
          _with_interval(r['robust_accuracy'], r['num_robust_examples']),
          f"{common.attack_label(atk)}, step {atk['step_size']:.3g}, "
          f"first {r['num_robust_examples']} test images",
          *aa_cols, f"{(r['train_time_s'] or 0) / 60:.1f} min", r['train_steps']])
  return markdown(['dataset', 'threat', 'model (train ε)', 'parameters',
                   'clean acc. (95 % CI)', 'robust acc. PGD (95 % CI)', 'PGD attack',
                   'robust acc. AutoAttack (95 % CI)',
                   'drop (points)', 'AutoAttack', 'train time', 'train steps'], rows)


def _autoattack_cols(pgd_robust: float, aa: dict | None, unfinished: dict | None) -> list[str]:
  """The table's AutoAttack columns (robust accuracy, drop, attack) of a finished
  evaluation, or of an unfinished one as bounds: at most its robust accuracy so
  far, a drop of at least that much; '–' without either."""
  if aa:
    return [_with_interval(aa['robust_accuracy'], aa['num_robust_examples']),
            f"{100 * (pgd_robust - aa['robust_accuracy']):.1f}",
            f"{common.attack_label(aa['eval_attack'])}, first {aa['num_robust_examples']}"]
  if not unfinished:
    return ['–'] * 3
  u = unfinished
  done = len(u['finished_stages'])
  return [f"≤ {u['robust_accuracy_so_far']:.2%} ({done} of {len(u['stages'])} stages)",
          f"≥ {100 * (pgd_robust - u['robust_accuracy_so_far']):.1f}",
          f"{common.attack_label(u['eval_attack'])}, first {u['num_robust_examples']}; "
          f"unfinished, {_stopped(u)}"]


def _stopped(u: dict) -> str:
  i = u['stopped_in_stage']
  if i >= len(u['stages']):
    return 'all stages done'
  targets = f" after {u['targets_done']} targets" if u['targets_done'] else ''
  return f"stopped in {u['stages'][i]}{targets}"


def autoattack_stages_table(results: list[dict]) -> str:
  """The accuracy table's AutoAttack evaluations stage by stage, beside PGD."""
  rows = []
  for res in results:
    for r in _threat_order(res['rows']):
      aa = r.get('autoattack')
      u = None if aa else r.get('autoattack_unfinished')
      if not aa and not u:
        continue
      model = 'standard' if r['role'] == 'standard' else 'robust'
      done = aa['robust_accuracy_by_stage'] if aa else u['finished_stages']
      stages = ' → '.join(f"{s['attack']} {pct(s['robust_accuracy'])}" for s in done)
      if aa:
        drop = f"{100 * (r['robust_accuracy'] - aa['robust_accuracy']):.1f}"
        minutes = aa['eval_time_s'] / 60
      else:
        stages = f"{stages} → … ({_stopped(u)}; {pct(u['robust_accuracy_so_far'])} so far)"
        drop = f"≥ {100 * (r['robust_accuracy'] - u['robust_accuracy_so_far']):.1f}"
        minutes = (sum(s['wall_time_s'] for s in done) + u['unfinished_stage_time_s']) / 60
      rows.append([r['dataset'], f"{r['threat_norm']} ε = {common.fmt_eps(r['threat_eps'])}",
                   model, pct(r['robust_accuracy']), stages, drop,
                   f"{minutes:.1f} min" + ('' if aa else ' so far')])
  return markdown(['dataset', 'threat', 'model', 'PGD', 'AutoAttack, after each stage',
                   'drop (points)', 'AutoAttack time'], rows)
