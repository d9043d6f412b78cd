r"""The trained models behind Figures 2–4 and the reference table.

    python -m tradeoff.figures gradients|adversarial|interpolation|reference

Per dataset: workdirs of finished tradeoff runs ('' where there is none) and
the large ε of Figure 3. The defaults are the full-data (n = 60 000) runs of
the reduced-scale sweeps, so they exist once these have run:

    python -m launch.sweep --sweep=configs/sweeps/figure6_mnist_linf.py
    python -m launch.sweep --sweep=configs/sweeps/figure1_mnist_l2.py
    python -m launch.sweep --sweep=configs/sweeps/figure7_mnist_linf.py
    python -m launch.sweep --sweep=configs/sweeps/figure6_fashion_mnist_linf.py
    python -m launch.sweep --sweep=configs/sweeps/figure7_fashion_mnist_linf.py
    TFDS_DATA_DIR=<dir with cifar10> \
        python -m launch.sweep --sweep=configs/sweeps/reference_cifar10_cpu.py

Restricted ImageNet's models are the paper-size ℓ2 ones of
configs/sweeps/reference_restricted_imagenet_l2.py (accelerators; add
`--datasets=restricted_imagenet` once they exist); its large ε is the paper's
ℓ2 40.

CIFAR-10 has no reduced-scale sweep: its models are the CPU-sized reference
models (ResNet-8, fast adversarial training, 5 epochs).

`independent` is a second standard model (another seed: other initialisation
and data order), used only to judge the adversarial examples of Figure 3.
Any entry can be pointed elsewhere, e.g. at paper-size models trained with
configs/mnist_linf.py:

    python -m tradeoff.figures gradients --spec=configs/figures/robust_models.py \
        --spec.mnist.robust_linf=runs/mnist_linf

Large ε (Figure 3): the paper's ℓ2 4 (MNIST) / 4.7 (CIFAR-10) and ℓ∞ 0.3 /
0.125; Fashion-MNIST is not in the paper: ℓ∞ 0.2, twice its training ε (its
configs explain why training uses 0.1 rather than MNIST's 0.3).
"""
import ml_collections

from launch import grids
from tradeoff import configlib


def _full_data_run(sweep: str, eps: float, seed: int = 0) -> str:
  """The n = 60 000 run of a reduced-scale size / ε sweep, named by the sweep."""
  return grids.workdir_of(f'configs/sweeps/{sweep}.py', eps=eps,
                          **{'data.train_size': 60000, 'seed': seed})


def _cifar_run(**point) -> str:
  return grids.workdir_of('configs/sweeps/reference_cifar10_cpu.py', **point)


def _rin_run(**point) -> str:
  return grids.workdir_of('configs/sweeps/reference_restricted_imagenet_l2.py', **point)


def get_config(arg=None):
  del arg
  c = ml_collections.ConfigDict()
  c.mnist = ml_collections.ConfigDict({
      'standard': _full_data_run('figure6_mnist_linf', 0.0),
      'independent': _full_data_run('figure7_mnist_linf', 0.0, seed=1),
      'robust_linf': _full_data_run('figure6_mnist_linf', 0.3),
      'robust_l2': _full_data_run('figure1_mnist_l2', 1.5),
      'large_eps_linf': 0.3, 'large_eps_l2': 4.0})
  c.fashion_mnist = ml_collections.ConfigDict({
      'standard': _full_data_run('figure6_fashion_mnist_linf', 0.0),
      'independent': _full_data_run('figure7_fashion_mnist_linf', 0.0, seed=1),
      'robust_linf': _full_data_run('figure6_fashion_mnist_linf', 0.1),
      'robust_l2': '',
      'large_eps_linf': 0.2, 'large_eps_l2': 4.0})
  c.cifar10 = ml_collections.ConfigDict({
      'standard': _cifar_run(**{'attack.eps': 0.0}),
      'independent': _cifar_run(**{'attack.eps': 0.0, 'seed': 1}),
      'robust_linf': _cifar_run(**{'attack.eps': 4 / 255}),
      'robust_l2': _cifar_run(norm='l2', eps=0.314),
      'large_eps_linf': 0.125, 'large_eps_l2': 4.7})
  c.restricted_imagenet = ml_collections.ConfigDict({
      'standard': _rin_run(**{'attack.eps': 0.0}),
      'independent': _rin_run(**{'attack.eps': 0.0, 'seed': 1}),
      'robust_l2': _rin_run(**{'attack.eps': 1.0}),
      'large_eps_l2': 40.0})
  c.num_eval_examples = 1000      # test images behind each number
  c.attack_steps = 100            # large-ε PGD steps, from x (no random start)
  c.step_scale = 2.5              # step = step_scale · ε / attack_steps
  c.interpolation_points = 20
  c.interpolation_images = 5
  c.seed = 0                      # target classes
  # python -m tradeoff.figures reference: standard and robust models under one
  # attack at the robust model's training norm and ε
  c.reference_attack = ml_collections.ConfigDict({
      'num_steps': 100, 'restarts': 5, 'step_scale': 2.5, 'num_examples': 1000})
  # ... and under AutoAttack ('autoattack': the standard version; 'autoattack_fast';
  # '' for none) at the same norm and ε, beside it. `records`: result files of
  # `python -m tradeoff.bench --mode=attacks` whose AutoAttack evaluation of the
  # same trained model with the same settings is used instead of repeating it.
  c.reference_autoattack = ml_collections.ConfigDict({
      'name': 'autoattack', 'num_examples': 1000, 'settings': configlib.autoattack_config(),
      'records': ['figures/results/bench_attacks_mnist_linf.json']})
  return c
