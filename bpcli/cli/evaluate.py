"""``bpcli eval`` and ``bpcli predict``: use a trained checkpoint."""

from __future__ import annotations

import click

from bpcli.cli.group import cli


@click.command("eval")
@click.argument("checkpoint", type=click.Path())
@click.option(
    "--dataset",
    metavar="NAME|FILE",
    help="Evaluate on this registered dataset or data file instead of the checkpoint's own "
    "test split.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
def eval_cmd(checkpoint: str, dataset: str | None, as_json: bool) -> None:
    """Evaluate CHECKPOINT (a .npz file or a run directory) on its test split.

    Prints loss and accuracy (classifiers, with a confusion matrix: rows are true classes,
    columns predicted) or perplexity (language models). A run directory means its best.npz.

    \b
    Examples:
      bpcli eval runs/mlp-digits-20250101-120000
      bpcli eval runs/mlp-digits-20250101-120000/last.npz --json
      bpcli eval runs/cnn-digits/best.npz --dataset my_digits.npz
    """
    from bpcli.app.training.evaluate import evaluate
    from bpcli.cli import render_train

    result = evaluate(checkpoint, dataset=dataset)
    render_train.eval_result(result, as_json=as_json)


@click.command("predict")
@click.argument("checkpoint", type=click.Path())
@click.argument("input_npz", metavar="INPUT", type=click.Path())
@click.option(
    "-o",
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    help="Where to write the predictions (default INPUT.pred.npz).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary of what was written.")
def predict_cmd(checkpoint: str, input_npz: str, out_path: str | None, as_json: bool) -> None:
    """Run CHECKPOINT on the raw inputs in INPUT and write the predictions to an .npz or .csv.

    INPUT is an .npz (inputs under the key 'x', or its only array) or .npy, a CSV file (the
    label column, when present, is ignored), a folder of images (or of class folders), an
    IDX file, or a text file for a language model. Inputs are given raw, as the training
    file held them: the checkpoint standardises them as in training, and warns when their
    scale is far from the training data's. The output holds 'classes' (arg-max ids),
    'labels' (class names) and 'probabilities' for classifiers, 'predictions' for
    regression, 'next_probabilities' for a language model.

    \b
    Examples:
      bpcli predict runs/mlp-digits-20250101-120000 digits.npz -o preds.npz
      bpcli predict runs/mlp-digits-20250101-120000/best.npz digits.npz --json
      bpcli predict runs/flowers new_flowers.csv -o predictions.csv
    """
    from bpcli.app.training.predict import predict
    from bpcli.cli import render_train

    result = predict(checkpoint, input_npz, out_path)
    render_train.predict_result(result, as_json=as_json)


cli.add_command(eval_cmd)
cli.add_command(predict_cmd)
