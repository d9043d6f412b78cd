r"""Restricted ImageNet, ℓ2 ε = 1.0 (Tsipras et al.): as restricted_imagenet_linf.py otherwise.

    TFDS_DATA_DIR=/data/tfds python -m tradeoff.main \
        --config=configs/restricted_imagenet_l2.py --workdir=runs/rin_l2
    python -m tradeoff.main --config=configs/restricted_imagenet_l2.py:smoke --workdir=/tmp/s

Figure 3's large-ε examples of this model use ℓ2 ε = 40 (configs/figures).
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    '_restricted_imagenet_linf', os.path.join(os.path.dirname(__file__),
                                              'restricted_imagenet_linf.py'))
_linf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_linf)


def get_config(arg=None):
  return _linf.restricted_imagenet('l2', 1.0, arg)
