r"""MNIST ℓ∞ ε = 0.3 robust reference model with a 3-step training attack.

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu_pgd3.py

configs/mnist_linf.py (the full Madry et al. CNN, Adam 1e-3 with a cosine
schedule, ε ramped up over the first 10 % of training) trained for 10 epochs
with PGD-3 from a random start, step 2.5·ε/3, instead of the paper's PGD-40
(step ε/30). Single-step training of the same network for the same budget
(configs/sweeps/reference_mnist_linf_cpu.py) overfitted catastrophically;
three steps cost twice as much and are the smallest multi-step attack.

Evaluation is the config's PGD-100 (step ε/30) with 5 random restarts on the
first 1000 test images (clean accuracy: all 10 000), the same attack as the
other MNIST ℓ∞ reference rows. The standard model is the one of
reference_mnist_linf_cpu.py.
"""

from launch import grids


def get_config(arg=None):
  del arg
  s = grids.reference_sweep(
      'reference_mnist_linf_cpu_pgd3', 'configs/mnist_linf.py', 0.3,
      overrides=(('attack.num_steps', 3), ('attack.step_scale', 2.5),
                 ('num_epochs', 10.0), ('num_robust_eval_examples', 1000)))
  s.grid = [(('attack.eps', (0.3,)),)]
  return s
