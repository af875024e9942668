"""The ``bpcli`` Click group every command module adds itself to.

Its own module (not ``bpcli/cli/__init__.py``) so the command modules import it without
importing the package that imports them.
"""

from __future__ import annotations

import sys

import click

from bpcli import __version__
from bpcli.errors import BpcliError


class _Group(click.Group):
    """Turns a BpcliError into ``bpcli: <where>: <message>`` on stderr and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BpcliError as e:
            click.echo(f"bpcli: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bpcli")
def cli() -> None:
    """Train neural networks with bpcli's own backpropagation engine.

    \b
    Examples:
      bpcli init-spec                     write a commented starter spec (model.toml)
      bpcli train models/mlp-digits.toml  train a spec into runs/<name>-<time>
      bpcli train SPEC --epochs 3 --json  override fields, JSON lines out
      bpcli eval runs/<run>               test metrics and confusion matrix
      bpcli diagnose runs/<run>           gradient health over the run, flags and fixes
      bpcli predict runs/<run> x.npz      write predictions for inputs
      bpcli export runs/<run> -o m.onnx   write the model as ONNX (--verify: onnxruntime)
      bpcli train m.onnx --dataset digits fine-tune an imported ONNX model
      bpcli info models/cnn-digits.toml   layers, shapes, parameters, FLOPs
      bpcli spec --resolved SPEC          the spec with every default filled in
      bpcli bench                         time training steps against PyTorch
      bpcli gradcheck SPEC                finite-difference check of every gradient
      bpcli sweep SPEC --lr 1e-4:1:9      learning rate x initialiser grid
      bpcli lr-find SPEC                  learning-rate range test
      bpcli ops                           every op with its gradient formula and ONNX name
      bpcli plugins                       the plugins loaded and the parts they register
    """
