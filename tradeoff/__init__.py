"""tradeoff: adversarial robustness and the robustness-accuracy trade-off in JAX."""
import os as _os

# Run files on cloud storage (gs://) go through etils.epath. It would pick
# TensorFlow's gfile where TensorFlow is installed and fsspec's gcsfs where it
# is not (Colab's TPU runtime): one client everywhere, the one the tests run
# against a GCS server, unless the user chose otherwise.
_os.environ.setdefault('EPATH_USE_TF', 'false')

__version__ = '0.1.0'
