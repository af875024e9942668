"""``bpcli export``, ``bpcli import`` and ``bpcli onnx check``: ONNX files in and out."""

from __future__ import annotations

import sys

import click

from bpcli.cli.group import cli


@click.command("export")
@click.argument("checkpoint", metavar="RUN_OR_CHECKPOINT", type=click.Path())
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write.")  # fmt: skip
@click.option("--opset", type=int, default=17, show_default=True,
              help="ONNX opset (13 up to the newest the installed onnx knows).")  # fmt: skip
@click.option("--dynamic-batch/--static-batch", default=True, show_default=True,
              help="A symbolic batch dimension, or the traced batch size fixed.")  # fmt: skip
@click.option("--verify", is_flag=True,
              help="Run the file in onnxruntime and print the largest differences.")  # fmt: skip
@click.option("--training", is_flag=True,
              help="Export the training-mode graph (batch stats, active dropout).")  # fmt: skip
@click.option("--no-preprocessing", "no_preprocessing", is_flag=True,
              help="Leave the run's input standardisation out of the graph (the file then "
                   "wants standardised inputs; its metadata says so).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def export_cmd(checkpoint: str, out: str, opset: int, dynamic_batch: bool, verify: bool,
               training: bool, no_preprocessing: bool, as_json: bool) -> None:  # fmt: skip
    """Write the model of RUN_OR_CHECKPOINT as an ONNX file.

    A run directory means its best.npz. The model is rebuilt from the checkpoint's spec,
    traced on an example batch of the training input shape and written with its parameters
    as initializers; onnx.checker checks the file. The run's input standardisation is
    written in front of the model (Sub, Div), so the file takes raw inputs as 'bpcli predict'
    does; the metadata_props 'bpcli.preprocessing' and 'bpcli.classes' say what and which.
    With --verify, onnxruntime runs it on raw samples of the run's own data and on random
    ones, and the largest differences from bpcli and the share of samples with the same
    predicted class are shown (exit 1 if they exceed rtol 1e-4 / atol 1e-5 or fewer than
    99.9% agree; an error when onnxruntime is not installed).

    \b
    Examples:
      bpcli export runs/mlp-digits-20250101-120000 -o mlp.onnx --verify
      bpcli export runs/cnn/best.npz -o cnn.onnx --opset 13 --static-batch --json
    """
    from bpcli.app.training.export import export_run
    from bpcli.cli import render_onnx

    result = export_run(checkpoint, out, opset=opset, dynamic_batch=dynamic_batch,
                        verify=verify, training=training,
                        preprocessing=not no_preprocessing)  # fmt: skip
    render_onnx.export_result(result, as_json=as_json)
    if result.verify is not None and not result.verify["ok"]:
        sys.exit(1)


@click.command("import")
@click.argument("path", metavar="MODEL.onnx", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def import_cmd(path: str, as_json: bool) -> None:
    """Import MODEL.onnx and summarise the graph bpcli would train.

    Shows inputs and outputs with their shapes, op counts, the opset (and the one it was
    converted from), parameters (trainable, frozen, buffers) and the shared initializers
    that were given one copy per layer ("untied"). Fine-tune it with
    'bpcli train MODEL.onnx --dataset NAME'.

    \b
    Examples:
      bpcli import resnet.onnx
      bpcli import mlp.onnx --json | jq .n_params
    """
    from bpcli.app.model.onnx_files import import_summary
    from bpcli.cli import render_onnx

    render_onnx.import_summary(import_summary(path), as_json=as_json)
    if not as_json:
        import onnx

        from bpcli.onnx.exporter.preprocess import read_metadata

        render_onnx.bpcli_metadata(read_metadata(onnx.load(path, load_external_data=False)))


@click.group("onnx")
def onnx_group() -> None:
    """Inspect ONNX files."""


@onnx_group.command("check")
@click.argument("path", metavar="MODEL.onnx", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def check_cmd(path: str, as_json: bool) -> None:
    """List every node of MODEL.onnx with whether bpcli can import it; nothing runs.

    Each node's op type, domain and opset is checked against the importer's table (and the
    ops plugins register). Exit 1 if any node is unsupported; all of them are listed.

    \b
    Examples:
      bpcli onnx check model.onnx
      bpcli onnx check model.onnx --json | jq '.nodes[] | select(.supported | not)'
    """
    from bpcli.app.model.onnx_files import check_onnx
    from bpcli.cli import render_onnx

    result = check_onnx(path)
    render_onnx.check_result(result, as_json=as_json)
    if result.unsupported:
        sys.exit(1)


cli.add_command(export_cmd)
cli.add_command(import_cmd)
cli.add_command(onnx_group)
