r"""A small ImageNet ResNet trained in bfloat16, to measure whether a bf16 attack is weaker.

    TFDS_DATA_DIR=<dir with cifar10> \
        python -m launch.sweep --sweep=configs/sweeps/precision_cifar10.py
    python -m tradeoff.figures precision \
        --workdir='runs/sweeps/precision_cifar10/model.dtype=bfloat16' --sanity_examples=500

configs/cifar10_linf.py (ℓ∞ ε = 4/255) with the ImageNet ResNet-18 (the
Restricted ImageNet model family, here on 32 px inputs) computing in bfloat16,
trained with PGD-3 on a class-balanced 10 000-image subset for 4 epochs: CPU
sized (about 20 minutes on 2 cores), robust enough that an attack's strength
shows. `figures precision` then attacks it in float32 and in bfloat16.
"""
import ml_collections


def get_config(arg=None):
  del arg
  s = ml_collections.ConfigDict()
  s.name = 'precision_cifar10'
  s.base = 'configs/cifar10_linf.py'
  s.overrides = (('model.name', 'imagenet_resnet'), ('model.depth', 18),
                 ('data.train_size', 10000), ('attack.num_steps', 3),
                 ('eval_attack.num_steps', 20), ('eval_attack.restarts', 1),
                 ('num_epochs', 4.0), ('num_robust_eval_examples', 500),
                 ('checkpoint_every', 100))
  s.grid = [(('model.dtype', ('bfloat16',)),)]
  s.budget = {}
  return s
