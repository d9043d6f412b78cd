r"""Why large-β TRADES lands at the non-robust end of the §2 frontier.

    python -m launch.sweep --sweep=configs/sweeps/trades_plateau_synthetic.py

In `frontier_synthetic` TRADES at β = 6 and 12 (10 epochs, cosine decay) ended
at 99.7 % standard / ≈ 2 % robust, while β = 3 ended at the robust corner (90 / 88 %).
The β = 3 run's training log shows it spent steps 400–900 on a plateau
(train loss ≈ 0.60, near ln 2, KL ≈ 0.03) before it found x_1; β = 6 stayed on
such a plateau (loss 0.645, KL 0.007) until the learning rate reached zero.
This sweep asks whether that is a plateau the optimiser leaves given time, or
where large-β TRADES settles: β ∈ {3, 6, 12}, trained 10 and 30 epochs, seeds 0
and 1, everything else as `frontier_synthetic`, evaluated at ε = 2η on 4000
stratified test points (worse of PGD-50 × 3 and the Theorem 2.1 shift).
"""
import ml_collections


def get_config(arg=None):
  del arg
  s = ml_collections.ConfigDict()
  s.name = 'trades_plateau_synthetic'
  s.base = 'configs/theory_mlp.py'
  s.overrides = (('loss.name', 'trades'), ('data.synthetic.num_test', 4000))
  s.grid = [(('loss.beta', (3.0, 6.0, 12.0)), ('num_epochs', (10.0, 30.0)), ('seed', (0, 1)))]
  s.budget = {}
  return s
