"""Auto-PGD: the paper's schedule, the invariants of every attack, known answers."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoff import attacks
from tradeoff import errors
from tradeoff import models
from tradeoff import objectives
from tradeoff.attacks import apgd
import tiny_models


def test_checkpoints_are_the_papers():
  # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06), w_j = ⌈p_j·N⌉.
  assert apgd.checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
  # the reference's counter also checks a window that ends with the last step
  assert apgd.checkpoints(20) == [4, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]


def test_apgd_evaluates_the_start_and_every_step_and_reaches_every_checkpoint():
  """The reference: the initial point plus num_steps steps, num_steps + 1 gradient
  evaluations; the checkpoint after step 99 of 100 happens (a halving there is seen
  in the step the 100th iteration takes)."""
  calls = []

  def logits_fn(z):
    jax.debug.callback(lambda: calls.append(1))
    return z @ jnp.ones((3, 4)) * jnp.arange(4.0)

  x = jnp.full((2, 3), 0.5)
  atk = attacks.APGD(eps=0.1, num_steps=100, bounds=(0.0, 1.0))
  jax.block_until_ready(atk(logits_fn, x, jnp.array([3, 3]), jax.random.key(0)))
  assert len(calls) == 101
  calls.clear()
  jax.block_until_ready(attacks.APGD(eps=0.1, num_steps=7, bounds=(0.0, 1.0))(
      logits_fn, x, jnp.array([3, 3]), jax.random.key(0)))
  assert len(calls) == 8


def test_apgd_halves_its_step_to_reach_an_optimum_inside_the_ball():
  """A loss whose maximum lies inside the ball: sign steps of the initial size 2ε
  only jump between faces, so APGD gets close only by halving its step (at the
  checkpoints where the loss oscillates) and going on from its best point."""
  eps, num_steps = 0.3, 100
  x = jnp.full((4, 16), 0.5)
  target = x + 0.37 * eps * jnp.linspace(-1, 1, 16)     # inside the ℓ∞ ball, off the grid
  def loss_fn(logits):
    return -jnp.sum(jnp.square(logits - target), axis=-1)
  _, _, best = apgd._apgd(loss_fn, lambda z: z, x, jnp.zeros(4, jnp.int32),  # pylint: disable=protected-access
                          jax.random.key(0), attacks.APGD(eps=eps, num_steps=num_steps,
                                                          bounds=(0.0, 1.0)))
  # The best point's squared distance to the optimum, summed over 16 coordinates:
  # below that of being 2ε/64 off in each (six halvings); a run that never halves
  # its step of 2ε = 0.6 stays a sizeable fraction of ε off.
  assert float(jnp.min(best)) > -16 * (2 * eps / 2 ** 6) ** 2


def test_dlr_of_fixed_logits():
  z = jnp.array([[5.0, 3.0, 2.0, 1.0, 0.0], [1.0, 4.0, 2.0, 0.5, 0.0]])
  y = jnp.array([0, 0])
  # untargeted: −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3)
  np.testing.assert_allclose(apgd.dlr(z, y), [-(5 - 3) / (5 - 2), -(1 - 4) / (4 - 1)],
                             rtol=1e-6)
  # targeted towards t: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4) / 2)
  t = jnp.array([1, 2])
  np.testing.assert_allclose(apgd.targeted_dlr(z, y, t),
                             [-(5 - 3) / (5 - 1.5), -(1 - 2) / (4 - 0.75)], rtol=1e-6)


def test_apgd_t_with_one_target_takes_the_class_ranked_second():
  """Four classes whose logits at x rank 0 > 1 > 2 > 3; within ε only class 1 can
  overtake class 0 (classes 2 and 3 need far more). APGD-T with one target must
  attack class 1 and succeed; taking a target from the bottom of the ranking fails."""
  w = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])   # logits: x0, x1, const, const
  b = jnp.array([0.0, 0.0, -2.0, -3.0])
  logits_fn = lambda z: z @ w + b
  x = jnp.array([[0.6, 0.5]])
  atk = attacks.APGD(eps=0.1, targets=1, num_steps=20, bounds=(0.0, 1.0))
  x_adv = atk(logits_fn, x, jnp.array([0]), jax.random.key(0))
  assert int(jnp.argmax(logits_fn(x_adv), -1)[0]) == 1


def test_dlr_is_invariant_to_shifting_and_scaling_the_logits():
  rng = np.random.default_rng(0)
  z = jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 6, 8), jnp.int32)
  t = (y + 1) % 6
  np.testing.assert_allclose(apgd.dlr(3 * z + 1, y), apgd.dlr(z, y), rtol=1e-5)
  np.testing.assert_allclose(apgd.targeted_dlr(3 * z - 2, y, t), apgd.targeted_dlr(z, y, t),
                             rtol=1e-5)
  correct = jnp.argmax(z, -1)
  assert jnp.all(apgd.dlr(z, correct) < 0)  # a correct prediction has negative DLR loss


def _linear_problem(num_classes=5, dim=20, n=400, seed=0):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=(dim, num_classes)).astype(np.float32)
  b = (0.1 * rng.normal(size=num_classes)).astype(np.float32)
  x = rng.normal(size=(n, dim)).astype(np.float32)
  logits_fn = lambda z: z @ w + b
  y = np.asarray(jnp.argmax(logits_fn(x), -1), np.int32)  # all correct on clean inputs
  return w, b, x, y, logits_fn


def _exact_linf_robust_accuracy(w, b, x, y, eps):
  """A linear classifier without an input box is robust at x iff every margin
  (w_y − w_j)·x + b_y − b_j exceeds ε‖w_y − w_j‖₁ (its worst case, δ = −ε·sign(w_y − w_j))."""
  z = x @ w + b
  margins = z[np.arange(len(y)), y][:, None] - z
  wt = w.T                                                   # [K, D]
  l1 = np.abs(wt[y][:, None, :] - wt[None, :, :]).sum(-1)    # ‖w_y − w_j‖₁, [n, K]
  slack = margins - eps * l1
  slack[np.arange(len(y)), y] = np.inf
  return float(np.mean(slack.min(1) > 0))


def _robust_accuracy(atk, logits_fn, x, y, key=0):
  x_adv = jax.jit(lambda a, b, k: atk(logits_fn, a, b, k))(x, y, jax.random.key(key))
  return float(np.mean(np.argmax(logits_fn(np.asarray(x_adv)), -1) == y)), np.asarray(x_adv)


def test_apgd_t_reaches_the_exact_robust_accuracy_of_a_linear_classifier():
  w, b, x, y, logits_fn = _linear_problem()
  eps = 0.1
  exact = _exact_linf_robust_accuracy(w, b, x, y, eps)
  assert 0.2 < exact < 0.8
  targeted, _ = _robust_accuracy(attacks.APGD(eps=eps, targets=4, bounds=None), logits_fn, x, y)
  assert targeted == exact
  for loss in ('ce', 'dlr'):
    acc, _ = _robust_accuracy(attacks.APGD(eps=eps, loss=loss, bounds=None), logits_fn, x, y)
    assert exact <= acc <= exact + 0.01   # no attack beats the exact worst case


@pytest.mark.parametrize('norm,eps', [('linf', 0.1), ('l2', 0.8)])
@pytest.mark.parametrize('config', [{'loss': 'ce'}, {'loss': 'dlr'}, {'targets': 3}])
def test_stays_in_ball_and_box_and_passes_no_gradient(norm, eps, config):
  module = models.MLP(num_outputs=5, hidden=(32,))
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.random((16, 12)), jnp.float32)
  params = module.init(jax.random.key(0), x)['params']
  logits_fn = lambda z: module.apply({'params': params}, z)
  y = jnp.argmax(logits_fn(x), -1)  # correct on x: the attack has to move
  atk = attacks.APGD(norm=norm, eps=eps, num_steps=10, restarts=2, **config)
  x_adv = jax.jit(lambda a: atk(logits_fn, a, y, jax.random.key(2)))(x)
  delta = np.asarray(x_adv - x).reshape(16, -1)
  size = np.abs(delta).max(1) if norm == 'linf' else np.linalg.norm(delta, axis=1)
  assert size.max() <= eps * (1 + 1e-5)
  assert float(x_adv.min()) >= 0 and float(x_adv.max()) <= 1
  grad = jax.grad(lambda a: jnp.sum(atk(logits_fn, a, y, jax.random.key(2))))(x)
  np.testing.assert_array_equal(grad, 0.0)
  loss = lambda z: float(jnp.mean(objectives.cross_entropy(logits_fn(z), y)))
  assert loss(x_adv) > loss(x)


def _trained_mlp(seed=0):
  """A small MLP trained on three Gaussian blobs in [0, 1]^8."""
  rng = np.random.default_rng(seed)
  centres = rng.random((3, 8)) * 0.6 + 0.2
  y = rng.integers(0, 3, 600).astype(np.int32)
  x = np.clip(centres[y] + 0.08 * rng.normal(size=(600, 8)), 0, 1).astype(np.float32)
  return tiny_models.train_mlp(x, y, num_classes=3, hidden=64, steps=200, seed=seed)


def test_apgd_is_at_least_as_strong_as_pgd_with_the_same_budget():
  logits_fn, x, y = _trained_mlp()
  eps, steps = 0.12, 20
  pgd, _ = _robust_accuracy(attacks.Attack(eps=eps, num_steps=steps, step_size=2.5 * eps / steps),
                            logits_fn, x, y)
  ce, _ = _robust_accuracy(attacks.APGD(eps=eps, num_steps=steps), logits_fn, x, y)
  dlr, _ = _robust_accuracy(attacks.APGD(eps=eps, num_steps=steps, loss='dlr'), logits_fn, x, y)
  assert 0.05 < pgd < 0.95, pgd   # the attack has something to find
  assert ce <= pgd and dlr <= pgd, (pgd, ce, dlr)


def test_bad_settings_are_named():
  with pytest.raises(errors.UserError, match="Unknown APGD loss 'hinge'"):
    attacks.APGD(eps=0.1, loss='hinge')
  with pytest.raises(errors.UserError, match='num_steps >= 2'):
    attacks.APGD(eps=0.1, num_steps=1)
  two_classes = lambda z: jnp.concatenate([z[:, :1], -z[:, :1]], axis=1)
  x = jnp.zeros((4, 3))
  with pytest.raises(errors.UserError, match='apgd_dlr needs at least 3 classes'):
    attacks.APGD(eps=0.1, loss='dlr')(two_classes, x, jnp.zeros(4, jnp.int32),
                                      jax.random.key(0))
  assert attacks.APGD(eps=0.0)(two_classes, x, jnp.zeros(4, jnp.int32), jax.random.key(0)) is x
  d = attacks.APGD(eps=0.3, targets=9).describe()
  assert d['name'] == 'apgd_t9' and d['checkpoints'][0] == 22 and d['initial_step'] == 0.6


def test_a_cascade_is_the_per_example_worst_case_of_its_stages():
  w, b, x, y, logits_fn = _linear_problem(seed=3)
  stages = (attacks.APGD(eps=0.1, num_steps=10, bounds=None),
            attacks.APGD(eps=0.1, num_steps=10, targets=2, bounds=None))
  cascade = attacks.Cascade('two', stages)
  key = jax.random.key(5)
  right = lambda z: np.argmax(logits_fn(np.asarray(z)), -1) == y
  alone = [right(s(logits_fn, x, y, jax.random.fold_in(key, i))) for i, s in enumerate(stages)]
  np.testing.assert_array_equal(right(cascade(logits_fn, x, y, key)), alone[0] & alone[1])
  assert cascade.describe()['stages'][1]['name'] == 'apgd_t2'


def test_eval_attack_name_builds_the_attack_and_checks_it():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  block = configlib.attack_config(20, norm='linf', eps=0.3)
  block.name = 'autoattack_fast'
  atk = attacks.from_config(block, (0.0, 1.0))
  assert [s.name for s in atk.stages] == ['apgd_ce', 'apgd_t9']
  block.name = 'autoattack'
  atk = attacks.from_config(block, (0.0, 1.0))
  # AutoAttack's "standard" version (reference implementation): 100 APGD / FAB
  # iterations, 1 restart each, 9 target classes, 5000 Square queries.
  assert [s.name for s in atk.stages] == ['apgd_ce', 'apgd_t9', 'fab_t9', 'square']
  assert [s.num_steps for s in atk.stages] == [100, 100, 100, 5000]
  assert [s.restarts for s in atk.stages] == [1, 1, 1, 1]
  assert all(s.eps == 0.3 and s.norm == 'linf' for s in atk.stages)
  fab = atk.stages[2]
  assert (fab.alpha_max, fab.eta, fab.beta) == (0.1, 1.05, 0.9)
  assert (atk.stages[3].p_init, atk.stages[3].rescale_schedule) == (0.8, False)
  one, count = atk.stages[1].per_target()
  assert (one.targets, count) == (1, 9) and atk.stages[0].per_target() is None
  block = ml_collections.ConfigDict(block.to_dict())
  block.name = 'fab'
  with pytest.raises(errors.UserError, match="Unknown attack name 'fab'.*apgd_ce"):
    attacks.from_config(block, (0.0, 1.0))


def test_few_remaining_points_get_a_small_batch():
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  assert [accuracy._bucket(n, 500, 2) for n in (1, 2, 3, 30, 256, 257, 900)] == [
      2, 2, 4, 32, 256, 500, 500]


def test_a_killed_cascade_evaluation_resumes_where_it_stopped_with_the_same_answers(tmp_path):
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  from tradeoff import parallel  # pylint: disable=g-import-not-at-top
  module = models.Linear(num_outputs=4)
  rng = np.random.default_rng(1)
  x = rng.random((64, 12), np.float32)
  params = module.init(jax.random.key(0), x[:1])['params']
  y = np.array(jnp.argmax(module.apply({'params': params}, x), -1), np.int32)
  y[:8] = (y[:8] + 1) % 4                               # a few wrong on clean inputs
  stages = (attacks.APGD(eps=0.01, num_steps=5), attacks.APGD(eps=0.03, num_steps=5, targets=3))
  cascade = attacks.Cascade('two', stages)
  n = jax.local_device_count()
  args = (module, cascade, parallel.replicate(params, n), parallel.replicate({}, n), x, y, 16,
          jax.random.key(3), 48)
  whole = accuracy.evaluate_clean_and_robust(*args)
  assert 0 < whole['robust_accuracy'] < whole['robust_accuracy_by_stage'][0]['robust_accuracy']

  path = str(tmp_path / 'progress' / 'p.json')
  key = {'what': 'the test cascade'}
  real, calls = accuracy.robust_mask, []

  def dies_on_the_fourth_call(*a, **k):   # clean mask, APGD-CE, target 1, then target 2 dies
    calls.append(1)
    if len(calls) == 4:
      raise KeyboardInterrupt
    return real(*a, **k)

  accuracy.robust_mask = dies_on_the_fourth_call
  try:
    with pytest.raises(KeyboardInterrupt):
      accuracy.evaluate_clean_and_robust(*args, progress=accuracy.CascadeProgress(path, key))
  finally:
    accuracy.robust_mask = real
  import json  # pylint: disable=g-import-not-at-top
  saved = json.load(open(path))
  assert (saved['stage'], saved['part']) == (1, 1) and len(saved['by_stage']) == 1

  calls.clear()
  accuracy.robust_mask = lambda *a, **k: calls.append(1) or real(*a, **k)
  try:
    resumed = accuracy.evaluate_clean_and_robust(*args,
                                                 progress=accuracy.CascadeProgress(path, key))
  finally:
    accuracy.robust_mask = real
  assert len(calls) == 3                      # clean mask, targets 2 and 3: nothing done twice
  assert resumed['robust_accuracy'] == whole['robust_accuracy']
  assert ([(s['attack'], s['robust_accuracy'], s['attacked_points'])
           for s in resumed['robust_accuracy_by_stage']]
          == [(s['attack'], s['robust_accuracy'], s['attacked_points'])
              for s in whole['robust_accuracy_by_stage']])
  assert resumed['resumed']['stage'] == 2 and resumed['resumed']['part'] == 1
  assert resumed['resumed']['earlier_time_s'] > 0 and 'resumed' not in whole
  assert not os.path.exists(path)             # removed once finished

  # A file left by another evaluation is not taken for this one's.
  accuracy.CascadeProgress(path, {'what': 'another'}).save(
      np.zeros(48, bool), [], 1, 0, 0.0, 0)
  again = accuracy.evaluate_clean_and_robust(*args, progress=accuracy.CascadeProgress(path, key))
  assert again['robust_accuracy'] == whole['robust_accuracy'] and 'resumed' not in again


def test_a_cascade_evaluations_progress_file_is_named_by_what_it_evaluates(tmp_path):
  import types  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff import evaluation  # pylint: disable=g-import-not-at-top
  from tradeoff import trained  # pylint: disable=g-import-not-at-top

  def exp(eps=0.3, approximate=False, attack='autoattack', **config):
    c = ml_collections.ConfigDict({'num_robust_eval_examples': 1000, 'seed': 0,
                                   'data': {'eval_batch_size': 500, 'name': 'cifar10'}})
    c.update(config)
    if attack == 'autoattack':
      atk = attacks.autoattack('linf', eps, configlib.autoattack_config(), (0.0, 1.0))
    else:
      atk = attacks.APGD(loss='ce', norm='linf', eps=eps, num_steps=10, restarts=1,
                         bounds=(0.0, 1.0))
    info = {'source': 'tfds:cifar10:3.0.2', 'approximate_copy': approximate}
    return types.SimpleNamespace(config=c, eval_attack=atk, ds=types.SimpleNamespace(info=info))

  def path(e, step=100, num_eval=10000, sha='0123456789abcdef'):
    return evaluation.cascade_progress(e, str(tmp_path), step, num_eval, sha).path

  params = {'dense': {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3)}}
  retrained = {'dense': {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3) + 1e-6}}
  sha = trained.variables_digest(params, {})
  assert sha == trained.variables_digest(
      {'dense': {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3)}}, {})
  assert sha != trained.variables_digest(retrained, {})
  base = path(exp())
  assert base == path(exp()) and base.startswith(str(tmp_path / 'evaluations' / 'progress'))
  others = [path(exp(eps=0.1)), path(exp(approximate=True)), path(exp(seed=1)),
            path(exp(num_robust_eval_examples=500)), path(exp(), step=200),
            path(exp(), num_eval=5000),
            path(exp(), sha=trained.variables_digest(retrained, {}))]
  assert base not in others and len(set(others)) == len(others)
  assert evaluation.cascade_progress(exp(attack='apgd'), str(tmp_path), 100, 10000, sha) is None


@pytest.mark.parametrize('name', ['autoattack_fast', 'autoattack'])
def test_a_model_with_fewer_classes_than_targets_gets_every_other_class_as_a_target(name):
  """5 classes, default 9 targets, ε = 1e-6 (nothing can change a prediction): the
  robust accuracy is the clean accuracy. Out-of-range targets made the iterates NaN,
  which counted as adversarial (robust accuracy 0)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  settings = configlib.autoattack_config()
  settings.update(apgd_steps=5, fab_steps=5, square_queries=20)
  block = ml_collections.ConfigDict({'name': name, 'norm': 'linf', 'eps': 1e-6, 'num_steps': 5,
                                     'restarts': 1, 'autoattack': settings})
  cascade = attacks.from_config(block, (0.0, 1.0), num_classes=5)
  assert [s.describe()['name'] for s in cascade.stages][1] == 'apgd_t4'
  module = models.build(ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 0,
                                                   'normalize': False, 'keep_features': ()}),
                        5, (0.0,), (1.0,))
  x = jax.random.uniform(jax.random.key(0), (40, 4, 4, 1))   # images: Square needs them
  params = module.init(jax.random.key(1), x[:1])['params']
  y = np.asarray(models.predict(module.apply({'params': params}, x)))   # all correct
  n = jax.local_device_count()
  res = accuracy.evaluate_clean_and_robust(
      module, cascade, jax.tree.map(lambda a: np.stack([a] * n), params), {}, np.asarray(x), y,
      20 * n,
      jax.random.key(2))
  assert res['clean_accuracy'] == 1.0 and res['robust_accuracy'] == 1.0
  # Built without the class count, a cascade with too many targets is refused, not run.
  with pytest.raises(errors.UserError, match='model has 5 classes'):
    accuracy.evaluate_clean_and_robust(
        module, attacks.from_config(block, (0.0, 1.0)),
        jax.tree.map(lambda a: np.stack([a] * n), params), {}, np.asarray(x), y, 20 * n,
        jax.random.key(2))


def test_violation_measures_how_far_outside_the_ball_and_box_an_output_lies():
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  x = jnp.full((4, 3), 0.5)
  adv = jnp.array([[0.6, 0.5, 0.5], [0.75, 0.5, 0.5], [1.2, 0.5, 0.5], [jnp.nan, 0.5, 0.5]])
  v = np.asarray(accuracy.violation(adv, x, 'linf', 0.1, (0.0, 1.0)))
  np.testing.assert_allclose(v[:3], [0.0, 0.15, 0.6], atol=1e-6)   # inside; ball; ball and box
  assert v[3] == np.inf
  np.testing.assert_allclose(accuracy.violation(x + 0.3, x, 'l2', 0.5, None),
                             np.sqrt(3 * 0.09) - 0.5, rtol=1e-5)


class _Broken:
  """A stage that steps outside its ball: the cascade must stop, not count it."""
  norm, eps, bounds = 'linf', 0.1, (0.0, 1.0)

  def describe(self):
    return {'name': 'broken', 'norm': self.norm, 'eps': self.eps}

  def __call__(self, logits_fn, x, y, rng):
    return jnp.clip(x + 2 * self.eps, 0.0, 1.0)


def _tiny_linear(num_classes=5, shape=(4, 4, 1)):
  import ml_collections  # pylint: disable=g-import-not-at-top
  module = models.build(ml_collections.ConfigDict({'name': 'linear', 'num_outputs': 0,
                                                   'normalize': False, 'keep_features': ()}),
                        num_classes, (0.0,), (1.0,))
  x = np.asarray(jax.random.uniform(jax.random.key(0), (16, *shape)) * 0.5 + 0.25)
  params = module.init(jax.random.key(1), x[:1])['params']
  y = np.asarray(models.predict(module.apply({'params': params}, x)))
  return module, params, x, y


def test_an_attack_output_outside_the_threat_model_stops_the_evaluation():
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  module, params, x, y = _tiny_linear()
  n = jax.local_device_count()
  rep = jax.tree.map(lambda a: np.stack([a] * n), params)
  with pytest.raises(RuntimeError, match='broken returned a point 0.1 outside the linf ball'):
    accuracy.evaluate_clean_and_robust(module, attacks.Cascade('c', (_Broken(),)), rep, {},
                                       x, y, 8 * n, jax.random.key(2))
  ok = attacks.APGD(eps=0.1, num_steps=3, bounds=(0.0, 1.0))
  res = accuracy.evaluate_clean_and_robust(module, attacks.Cascade('c', (ok,)), rep, {}, x, y,
                                           8 * n, jax.random.key(2))
  assert 0.0 <= res['max_threat_model_violation'] <= accuracy.VIOLATION_TOLERANCE


def test_model_checks_flag_probabilities_randomness_dynamic_models_and_dead_gradients():
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  from tradeoff import accuracy  # pylint: disable=g-import-not-at-top
  module, params, x, y = _tiny_linear()
  good = accuracy.model_checks(module, params, {}, x, y, targets=9)
  assert good['deterministic'] and good['batch_independent'] and good['logits_not_probabilities']
  assert not good['enough_classes'] and good['zero_gradient_fraction'] == 0.0
  assert len(good['warnings']) == 1 and '9 targets but 5 classes' in good['warnings'][0]

  class Wrapped(nn.Module):
    """The linear model's logits after `kind`: softmax, batch centring, or a
    gradient-killing rounding."""
    kind: str
    num_outputs: int = 5

    @nn.compact
    def __call__(self, z, train=False):
      logits = module.clone(parent=None).apply({'params': params}, z)
      if self.kind == 'softmax':
        return jax.nn.softmax(logits)
      if self.kind == 'batch':
        return logits - jnp.mean(logits, axis=0, keepdims=True)
      return jax.lax.stop_gradient(jnp.round(logits * 4) / 4)

  for kind, failed in (('softmax', 'logits_not_probabilities'), ('batch', 'batch_independent')):
    res = accuracy.model_checks(Wrapped(kind), {}, {}, x, y)
    assert not res[failed], kind
  dead = accuracy.model_checks(Wrapped('round'), {}, {}, x, y)
  assert dead['zero_gradient_fraction'] == 1.0 and 'zero input gradient' in dead['warnings'][-1]


def test_the_checks_compare_the_configured_targets_not_the_ones_cut_to_the_classes():
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoff import configlib  # pylint: disable=g-import-not-at-top
  from tradeoff import evaluation  # pylint: disable=g-import-not-at-top
  block = ml_collections.ConfigDict({'name': 'autoattack', 'targets': 3,
                                     'autoattack': configlib.autoattack_config()})
  assert evaluation.configured_targets(block) == 9
  block.name = 'fab_t'
  assert evaluation.configured_targets(block) == 3
  block.name = 'pgd'
  assert evaluation.configured_targets(block) == 0
