"""A stored benchmark record as its table: one dispatch for `--show` and the docs."""
from __future__ import annotations


def format_record(out: dict) -> str:
  """The Markdown (header line + table) of any `python -m tradeoff.bench` record."""
  # pylint: disable=g-import-not-at-top
  from tradeoff.bench import attacks
  from tradeoff.bench import imagenet
  from tradeoff.bench import processes
  from tradeoff.bench import profile
  from tradeoff.bench import steps
  if 'multi_over_single_images_per_s' in out:
    return processes.format_compare(out)
  if 'pipeline' in out:
    return imagenet.format_pipeline(out)
  if str(out.get('model', '')).startswith('imagenet_resnet'):
    return imagenet.format_resnet(out)
  if 'profile' in out:
    return profile.format_profile(out)
  if 'autoattack_over_pgd' in out:
    return attacks.format_attack_cost(out)
  if 'convolutions' in out:
    return steps.format_layers(out)
  return steps.format_table(out)
