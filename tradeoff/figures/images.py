"""Image helpers shared by the figures: gradient displays and interpolation paths."""
from __future__ import annotations

import numpy as np


def normalize_gradient_image(g: np.ndarray, num_std: float = 3.0) -> np.ndarray:
  """Clips a gradient to mean ± num_std·σ (over the whole image) and rescales to [0, 1].

  The paper's visualisation of loss gradients of colour images; a constant
  image maps to 0.5.
  """
  g = np.asarray(g, np.float64)
  mu, sd = g.mean(), g.std()
  if sd == 0:
    return np.full_like(g, 0.5)
  lo, hi = mu - num_std * sd, mu + num_std * sd
  return (np.clip(g, lo, hi) - lo) / (hi - lo)


def signed_gradient_rgb(g: np.ndarray) -> np.ndarray:
  """A single-channel gradient as RGB: positive red, negative blue, scaled by max |g|."""
  g = np.asarray(g, np.float64)
  if g.ndim == 3 and g.shape[-1] == 1:
    g = g[..., 0]
  m = np.abs(g).max()
  g = g / m if m > 0 else g
  rgb = np.ones(g.shape + (3,))
  rgb[..., 1] -= np.abs(g)
  rgb[..., 0] -= np.clip(-g, 0, 1)
  rgb[..., 2] -= np.clip(g, 0, 1)
  return rgb


def interpolate(x: np.ndarray, x_adv: np.ndarray, num: int = 20) -> np.ndarray:
  """num evenly spaced points on the segment from x (first) to x_adv (last)."""
  if num < 2:
    raise ValueError(f'interpolate needs num >= 2 points, got {num}.')
  t = np.linspace(0.0, 1.0, num).reshape((num,) + (1,) * np.ndim(x))
  return (1 - t) * np.asarray(x)[None] + t * np.asarray(x_adv)[None]
