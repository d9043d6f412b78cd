"""Configs for tests that need a real run but no dataset: seconds per run."""

# A config file (also for command-line tests): a linear model on the §2 synthetic
# data trains in milliseconds per step, so the process start dominates.
TINY_CONFIG = '''
from tradeoff import configlib

def get_config(arg=None):
  c = configlib.base_config(dataset='synthetic', norm='linf', eps=0.1, model='linear')
  c.data.synthetic.update({'d': 20, 'num_train': 64, 'num_test': 64})
  c.data.batch_size = 16
  c.data.eval_batch_size = 32
  c.model.num_outputs = 1
  c.num_train_steps = 4
  c.log_every = 2
  c.checkpoint_every = 2
  c.progress_bar = False
  c.tensorboard = False
  return c
'''


def tiny_config():
  namespace = {}
  exec(TINY_CONFIG, namespace)  # pylint: disable=exec-used
  return namespace['get_config']()


def validated_config(eval_every: int = 3):
  """tiny_config with a validation split of 32 of its 96 training examples, 12
  steps, and every `eval_every` steps an evaluation of validation, test and the
  first 32 training examples."""
  c = tiny_config()
  c.data.synthetic.num_train = 96
  c.data.validation_size = 32
  c.num_train_steps = 12
  c.eval_every = eval_every
  c.eval_train_examples = 32
  c.optim.learning_rate = 0.5
  return c
