"""Small classifiers trained in a second, for the attack tests."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoff import models
from tradeoff import objectives


def train_mlp(x: np.ndarray, y: np.ndarray, num_classes: int, hidden: int, steps: int,
              seed: int = 0, keep: int = 256):
  """(logits_fn, x, y): an MLP trained full-batch with Adam, and the first `keep`
  examples it classifies correctly (so an attack has to move them)."""
  module = models.MLP(num_outputs=num_classes, hidden=(hidden,))
  params = module.init(jax.random.key(seed), x[:1])['params']
  tx = optax.adam(1e-2)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt):
    grads = jax.grad(lambda p: jnp.mean(objectives.cross_entropy(
        module.apply({'params': p}, x), y)))(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt

  for _ in range(steps):
    params, opt = step(params, opt)
  logits_fn = lambda z: module.apply({'params': params}, z)
  correct = np.asarray(jnp.argmax(logits_fn(x), -1)) == y
  assert correct.mean() > 0.95
  return logits_fn, x[correct][:keep], y[correct][:keep]
