"""Optimizers, gradient clipping and learning-rate schedules (``bpcli.optim.lr_scheduler``).

They work on the parameters' ``.data`` and ``.grad`` numpy arrays, with torch's update
formulas, argument names and defaults, and save their state without pickle.
"""

from bpcli.optim import lr_scheduler
from bpcli.optim.adam import Adam, AdamW, NAdam
from bpcli.optim.adaptive import Adagrad, RMSprop
from bpcli.optim.clip import clip_grad_norm_, clip_grad_value_, grad_norm
from bpcli.optim.optimizer import Optimizer, flatten_state, unflatten_state
from bpcli.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "NAdam",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm_",
    "clip_grad_value_",
    "flatten_state",
    "grad_norm",
    "lr_scheduler",
    "unflatten_state",
]
