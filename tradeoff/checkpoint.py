"""Orbax checkpoints of the train state in `workdir/checkpoints`.

Each checkpoint holds the state (params, optimiser state, model state, step)
and a small JSON record (cumulative training seconds). Orbax writes a step to
a temporary directory and renames it when complete, so a run killed mid-save
still finds its previous checkpoint intact.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           cleanup_tmp_directories=True),
      item_names=('state', 'meta'))


def save(mngr: ocp.CheckpointManager, step: int, state: Any, meta: dict) -> None:
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(meta)))


def restore_latest(mngr: ocp.CheckpointManager, like: Any
                   ) -> tuple[Any, dict] | tuple[None, None]:
  """(state, meta) of the latest checkpoint, shaped like `like`, or (None, None)."""
  step = mngr.latest_step()
  if step is None:
    return None, None
  return restore(mngr, step, like)


def restore(mngr: ocp.CheckpointManager, step: int, like: Any) -> tuple[Any, dict]:
  """(state, meta) of the checkpoint at `step`, shaped like `like`."""
  if step not in mngr.all_steps():
    raise FileNotFoundError(f'No checkpoint at step {step} in {mngr.directory}; '
                            f'saved steps: {sorted(mngr.all_steps())}.')
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  out = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                   meta=ocp.args.JsonRestore()))
  return out['state'], dict(out['meta'])
