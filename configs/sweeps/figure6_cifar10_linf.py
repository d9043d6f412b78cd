r"""Figure 6, CIFAR-10 (approximate copy) ℓ∞: standard accuracy vs training-set size.

    TFDS_DATA_DIR=<dir with cifar10> python -m launch.sweep --sweep=configs/sweeps/figure6_cifar10_linf.py
    python -m tradeoff.figures figure1 --results=figures/results/figure6_cifar10_linf.json

configs/cifar10_linf.py at the scale of the CPU reference models
(reference_cifar10_cpu.py): ResNet-8 (one residual unit per group, 75 k
parameters), single-step training attack from a random start with step
1.25·ε (fast adversarial training), every run 800 steps of batch 128 with a
floor of 2 epochs, so n = 50 000 gets 2 epochs and n = 500 gets 200.
Evaluation: PGD-20 (step 2.5·ε/20) with 2 random restarts on the first 500
test images; clean accuracy on all 10 000.

Grid: ε ∈ {0, 4/255} × n ∈ {500, 5000, 50 000}, with a second seed at
n = 500. The n = 50 000 runs are also points of figure7_cifar10_linf.
"""
from launch import grids

EPS = (0.0, 4 / 255)


def cifar_cpu_overrides() -> tuple[tuple[str, object], ...]:
  return (('model.units', 1), ('attack.num_steps', 1), ('attack.step_scale', 1.25),
          ('eval_attack.num_steps', 20), ('eval_attack.step_scale', 2.5),
          ('eval_attack.restarts', 2), ('num_robust_eval_examples', 500),
          ('checkpoint_every', 400))


def get_config(arg=None):
  del arg
  s = grids.size_sweep('figure6_cifar10_linf', 'configs/cifar10_linf.py', EPS,
                           large_sizes=(5000, 50000))
  s.overrides = cifar_cpu_overrides()
  s.grid = [(('eps', EPS), ('data.train_size', (500, 5000, 50000)), ('seed', (0,))),
            (('eps', EPS), ('data.train_size', (500,)), ('seed', (1,)))]
  s.budget = {'steps': 800, 'min_epochs': 2}
  return s
