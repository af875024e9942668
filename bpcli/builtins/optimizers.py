"""The built-in optimizers, registered through the ``bpcli_register_optimizers`` hook."""

from bpcli.optim import SGD, Adagrad, Adam, AdamW, NAdam, RMSprop


def bpcli_register_optimizers(register) -> None:
    register("sgd", SGD)
    register("rmsprop", RMSprop)
    register("adagrad", Adagrad)
    register("adam", Adam)
    register("adamw", AdamW)
    register("nadam", NAdam)
