r"""Reference models, MNIST ℓ∞ ε = 0.3, at a size this 2-core CPU trains in under an hour.

    python -m launch.sweep --sweep=configs/sweeps/reference_mnist_linf_cpu.py

configs/mnist_linf.py (the full Madry et al. CNN, Adam 1e-3 with a cosine
schedule, ε ramped up over the first 10 % of training) with the training
attack replaced by one step from a random start with step 1.25·ε: "fast
adversarial training" (FGSM with random initialisation, Wong, Rice & Kolter,
ICLR 2020, whose MNIST recipe uses the same step), for 10 epochs. PGD-40
training, the paper's recipe, runs at about a ninth of its speed here.

Evaluation is the config's PGD-100 (step ε/30) with 5 random restarts, on the
first 1000 test images (clean accuracy: all 10 000). Catastrophic overfitting,
the known failure of single-step training, shows there as robust accuracy
near 0, and that is what this recipe gave on this network
(figures/results/reference_mnist_linf_cpu.json: 94.99 % clean, 0.0 % under
PGD-100 × 5, while the training batches' single-step accuracy ended at 97 %).
Its standard model (99.31 %) is the reference table's MNIST standard model.
"""

from launch import grids


def get_config(arg=None):
  del arg
  return grids.reference_sweep(
      'reference_mnist_linf_cpu', 'configs/mnist_linf.py', 0.3,
      overrides=(('attack.num_steps', 1), ('attack.step_scale', 1.25),
                 ('num_epochs', 10.0), ('num_robust_eval_examples', 1000)))
