# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     name: python3
# ---

# %% [markdown]
# # tradeoff on Colab
#
# Adversarial training and the robustness–accuracy trade-off (Tsipras et al., ICLR 2019) in JAX.
# This notebook detects the runtime (TPU, GPU or CPU), installs tradeoff, runs a smoke run, then
# the paper's CIFAR-10 ℓ∞ recipe, shows TensorBoard and draws figures from the runs' result files.
#
# Colab's free TPU runtime is a v5e-1: one TPU device, JAX preinstalled, no TensorFlow. Installing
# tradeoff adds the CPU build of TensorFlow, which tensorflow-datasets uses to download and read
# MNIST / CIFAR-10; Restricted ImageNet streams without it. `launch/colab.ipynb` is generated from
# `launch/colab.py` (jupytext); edit the `.py` and run `jupytext --sync launch/colab.py`.

# %% tags=["parameters"]
SMOKE = False         # True: seconds-long runs only (CI executes the notebook this way on CPU)
REPO_URL = ''         # git URL of tradeoff to clone on Colab, e.g. https://github.com/<you>/tradeoff
DATA_DIR = ''         # tfds data dir; '' lets tfds download into ~/tensorflow_datasets
WORKDIR = '/content/runs' if not SMOKE else 'runs/colab_smoke'
ALLOW_CPU = False     # True: run the hours-long CIFAR-10 cell even without an accelerator

# %%
import json
import os
import subprocess
import sys

IN_COLAB = 'google.colab' in sys.modules


def accelerator() -> str:
  """What this runtime offers, before JAX is imported (to pick what to install).

  TPU hosts before v5 show their chips as /dev/accel*; v5e, v5p and later as
  VFIO devices under /dev/vfio/ (Colab's free v5e-1 among them).
  """
  vfio = [d for d in (os.listdir('/dev/vfio') if os.path.isdir('/dev/vfio') else [])
          if d != 'vfio']
  if (os.environ.get('TPU_ACCELERATOR_TYPE') or os.environ.get('COLAB_TPU_ADDR') or
      os.path.exists('/dev/accel0') or vfio):
    return 'tpu'
  if os.path.exists('/dev/nvidia0'):
    return 'gpu'
  return 'cpu'


RUNTIME = accelerator()
print('runtime:', RUNTIME, '| in Colab:', IN_COLAB)

# %% [markdown]
# ## Install
# On Colab: clone the repository (configs live beside the package) and install it. Elsewhere, run
# the notebook from a checkout where `pip install -e .` has been done.

# %%
if IN_COLAB:
  if not REPO_URL:
    raise ValueError('Set REPO_URL to the git URL of tradeoff.')
  if not os.path.isdir('/content/tradeoff'):
    subprocess.run(['git', 'clone', '--depth=1', REPO_URL, '/content/tradeoff'], check=True)
  os.chdir('/content/tradeoff')
  extra = ['jax[tpu]'] if RUNTIME == 'tpu' else (['jax[cuda12]'] if RUNTIME == 'gpu' else [])
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.', *extra], check=True)

# %% [markdown]
# What JAX itself found, which is what training will use (the device files above only chose the
# install). A TPU or GPU runtime on which JAX falls back to the CPU is reported here.

# %%
import jax

BACKEND = jax.default_backend()
print('JAX', jax.__version__, '| backend:', BACKEND, '|', jax.device_count(), 'device(s):',
      jax.devices())
if RUNTIME != 'cpu' and BACKEND == 'cpu':
  print(f'WARNING: this runtime has a {RUNTIME.upper()}, but JAX runs on the CPU: the '
        f'jax[{RUNTIME}] install did not take; restart the runtime and rerun the install cell.')

# %% [markdown]
# ## A smoke run
# The same code paths as the paper's MNIST run on 64 images for 4 steps. Data: tfds downloads
# MNIST on first use (or reads `DATA_DIR`).

# %%
def train(config: str, workdir: str, *overrides: str) -> dict:
  """python -m tradeoff.main in a subprocess (its progress streams here); its results.json."""
  env = {**os.environ, **({'TFDS_DATA_DIR': DATA_DIR} if DATA_DIR else {})}
  cmd = [sys.executable, '-m', 'tradeoff.main', f'--config={config}', f'--workdir={workdir}',
         *overrides]
  subprocess.run(cmd, check=True, env=env)
  with open(os.path.join(workdir, 'results.json')) as f:
    return json.load(f)


smoke = train('configs/mnist_linf.py:smoke', os.path.join(WORKDIR, 'mnist_smoke'))
print(f"clean {smoke['clean_accuracy']:.3f}, robust {smoke['robust_accuracy']:.3f} under "
      f"{smoke['eval_attack']['name']} on {smoke['device']}")

# %% [markdown]
# ## The paper's CIFAR-10 ℓ∞ run
# ResNet (filters 16/16/32/64), PGD-7 training at ε = 4/255, 200 epochs, PGD-20 × 5 evaluation
# (`configs/cifar10_linf.py`). Hours on one accelerator; rerunning the cell resumes from the
# last checkpoint (Colab disconnects: point WORKDIR at Google Drive to keep them).

# %%
if not SMOKE:
  if BACKEND == 'cpu' and not ALLOW_CPU:
    raise RuntimeError('JAX has no accelerator here (backend: cpu); the CIFAR-10 run would take '
                       'days. Pick a TPU or GPU runtime, or set ALLOW_CPU = True.')
  cifar = train('configs/cifar10_linf.py', os.path.join(WORKDIR, 'cifar10_linf'))
  print(f"clean {cifar['clean_accuracy']:.4f}, robust {cifar['robust_accuracy']:.4f}")

# %% [markdown]
# ## TensorBoard and figures from the result files

# %%
if IN_COLAB:
  from IPython import get_ipython  # pylint: disable=g-import-not-at-top
  get_ipython().run_line_magic('load_ext', 'tensorboard')
  get_ipython().run_line_magic('tensorboard', f'--logdir {WORKDIR}')

# %%
import matplotlib.pyplot as plt

from tradeoff import writers

runs = sorted(d for d in os.listdir(WORKDIR)
              if os.path.exists(os.path.join(WORKDIR, d, 'results.json')))
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2))
for name in runs:
  records = [r for r in writers.read_metrics(os.path.join(WORKDIR, name)) if 'train/loss' in r]
  ax_loss.plot([r['step'] for r in records], [r['train/loss'] for r in records], label=name)
  with open(os.path.join(WORKDIR, name, 'results.json')) as f:
    res = json.load(f)
  ax_acc.bar([f'{name}\nclean', f'{name}\nrobust'], [res['clean_accuracy'],
                                                       res['robust_accuracy']])
ax_loss.set_xlabel('step')
ax_loss.set_ylabel('training loss (adversarial)')
ax_loss.legend(fontsize=7)
ax_acc.set_ylabel('test accuracy')
fig.tight_layout()
os.makedirs(os.path.join(WORKDIR, 'figures'), exist_ok=True)
fig.savefig(os.path.join(WORKDIR, 'figures', 'runs.png'), dpi=120)
print('figure from', runs, '->', os.path.join(WORKDIR, 'figures', 'runs.png'))
