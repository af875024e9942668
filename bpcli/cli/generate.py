"""``bpcli generate``: sample text from a language-model run."""

from __future__ import annotations

import json

import click

from bpcli.cli.group import cli


@click.command("generate")
@click.argument("checkpoint", type=click.Path())
@click.option("--prompt", required=True, help="The text to continue (in the vocabulary).")
@click.option("--length", type=int, default=200, show_default=True, help="Characters to sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Softmax temperature; 0 always takes the most likely character.")  # fmt: skip
@click.option("--top-k", type=int, help="Sample among the K most likely characters only.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same text.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def generate_cmd(checkpoint, prompt, length, temperature, top_k, seed, as_json) -> None:
    """Sample text from CHECKPOINT (a char-lstm / tiny-transformer run, or a run fine-tuning a
    token-ids -> logits ONNX graph), continuing --prompt.

    \b
    Examples:
      bpcli generate runs/char-lstm-20250101-120000 --prompt "It is a truth" --length 300
      bpcli generate runs/tiny-transformer --prompt "Mr. Darcy" --temperature 0.7 --top-k 10
    """
    from bpcli.app.training.generate import generate

    res = generate(checkpoint, prompt, length, temperature, top_k, seed)
    if as_json:
        print(json.dumps({"checkpoint": res.checkpoint, "prompt": res.prompt, "text": res.text,
                          "temperature": res.temperature, "top_k": res.top_k, "seed": res.seed}))
    else:
        click.echo(res.prompt + res.text)


cli.add_command(generate_cmd)
