"""A stored benchmark record as its table: one dispatch for `--show` and the docs."""
from __future__ import annotations


def _formatters() -> dict:
  """{record kind: formatter}: the kind is the --mode that wrote the record."""
  # pylint: disable=g-import-not-at-top
  from tradeoff.bench import attacks
  from tradeoff.bench import imagenet
  from tradeoff.bench import loop
  from tradeoff.bench import processes
  from tradeoff.bench import profile
  from tradeoff.bench import reference
  from tradeoff.bench import steps
  return {'attacks': attacks.format_attack_cost, 'processes': processes.format_compare,
          'autoattack_reference': reference.format_reference, 'loop': loop.format_loop,
          'pipeline': imagenet.format_pipeline, 'resnet': imagenet.format_resnet,
          'profile': profile.format_profile, 'layers': steps.format_layers,
          'steps': steps.format_table}


def _kind_of_older_record(out: dict) -> str:
  """The kind of a record written before records named it, from the fields each
  mode wrote then (the committed records in figures/results are such)."""
  if 'multi_over_single_images_per_s' in out:
    return 'processes'
  if 'pipeline' in out:
    return 'pipeline'
  if str(out.get('model', '')).startswith('imagenet_resnet'):
    return 'resnet'
  if 'profile' in out:
    return 'profile'
  if 'autoattack_over_pgd' in out:
    return 'attacks'
  if 'convolutions' in out:
    return 'layers'
  return 'steps'


def format_record(out: dict) -> str:
  """The Markdown (header line + table) of any `python -m tradeoff.bench` record."""
  kind = out.get('kind') or _kind_of_older_record(out)
  formatters = _formatters()
  if kind not in formatters:
    raise ValueError(f'Benchmark record of unknown kind {kind!r}; known: {sorted(formatters)}.')
  return formatters[kind](out)
