r"""Restricted ImageNet, ℓ∞ ε = 0.005 (Tsipras et al.): ResNet-50 at 224 px, PGD-7 training.

    python -m tradeoff.prepare imagenet2012 --data_dir=/data/tfds --manual_dir=/data/ilsvrc
    TFDS_DATA_DIR=/data/tfds python -m tradeoff.main \
        --config=configs/restricted_imagenet_linf.py --workdir=runs/rin_linf
    python -m tradeoff.main --config=configs/restricted_imagenet_linf.py:smoke --workdir=/tmp/s

Data: ImageNet's classes in the nine superclass ranges (tradeoff/imagenet.py),
relabelled 0-8, streamed from tfds's ArrayRecord files (tradeoff/streaming.py):
random-resized crops with flips for training, resize to 256 and centre crop
224 for evaluation. Training: PGD-7 with steps of 2.5·ε/7 from a random start;
the robustness library's Restricted ImageNet recipe otherwise (SGD, momentum
0.9, batch 256, learning rate 0.1, weight decay 1e-4, 150 epochs with the
rate ×0.1 at epochs 50 and 100). Evaluation: PGD-20 (step 2.5·ε/20); re-evaluate
with `tradeoff.evaluate --attack=autoattack` for a number to report.
`--config.model.dtype=bfloat16` computes activations in bf16 (parameters,
loss and optimiser state stay f32). The smoke variant (ResNet-18, 64 px, four
steps) runs on any prepared imagenet2012, such as the tests' tiny one.
"""
from tradeoff import configlib


def restricted_imagenet(norm: str, eps: float, arg=None):
  c = configlib.base_config(dataset='restricted_imagenet', norm=norm, eps=eps,
                            model='imagenet_resnet')
  c.model.depth = 50
  c.attack = configlib.train_attack_config(7)
  c.eval_attack = configlib.attack_config(20, restarts=1)
  # A rolled PGD loop: unrolled, a ResNet-50 step would compile 7 (20) copies of the
  # network for a per-iteration overhead that is negligible at this size.
  c.attack.unroll = c.eval_attack.unroll = False
  c.data.batch_size = 256
  c.data.eval_batch_size = 256
  c.optim.learning_rate = 0.1
  c.optim.weight_decay = 1e-4
  c.optim.decay_at = (1 / 3, 2 / 3)
  c.num_epochs = 150.0
  c.log_every = 100
  c.checkpoint_every = 1000
  if arg == configlib.SMOKE:
    c = configlib.shrink_for_smoke(c)
    c.model.depth = 18
    c.data.train_size = 0       # every example of the (tiny) prepared data
    c.data.image_size = 64
    c.data.batch_size = 8
    c.data.eval_batch_size = 8
    c.data.workers = 4
    c.num_eval_examples = 16
    return c
  return configlib.finalize(c, arg)


def get_config(arg=None):
  return restricted_imagenet('linf', 0.005, arg)
