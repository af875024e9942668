"""``bpcli generate``: sample text from a character language-model run, and the next-token
probabilities ``bpcli predict`` gives for such a run.

A stateful model (char-lstm) reads the prompt once and then one token per step, its
recurrent state carried from step to step; a stateless one (a transformer, an imported
token-ids -> logits graph) re-reads the last ``bptt`` tokens (at most its ``max_len``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpcli.app.training.evaluate import restore
from bpcli.data.text import Vocab
from bpcli.engine.grad_mode import no_grad
from bpcli.engine.tensor import Tensor
from bpcli.errors import BpcliError


@dataclass
class GenerateResult:
    """The prompt and what the model wrote after it."""

    checkpoint: str
    prompt: str
    text: str  # the sampled continuation (without the prompt)
    temperature: float
    top_k: int | None
    seed: int | None


def _language_run(checkpoint):
    built, ckpt, path = restore(checkpoint, data=False)
    if built.task != "language":
        raise BpcliError(f"a {built.task} model; generate needs a language-model run "
                         "(char_rnn, char_transformer or a token-ids ONNX graph)", str(path))
    if not ckpt.get("classes"):
        raise BpcliError("the checkpoint holds no vocabulary", str(path))
    return built, ckpt, path, Vocab("".join(ckpt["classes"]))


def _context(built, ckpt) -> int:
    bptt = int((ckpt.get("spec", {}).get("train") or {}).get("bptt", 64))
    return min(bptt, int(getattr(built.model, "max_len", bptt) or bptt))


class _Stepper:
    """Logits of the next token after each token fed, stateful or re-reading a window."""

    def __init__(self, built, ckpt):
        self.model, self.stateful = built.model, built.stateful
        self.window, self.state, self.ids = _context(built, ckpt), None, []
        self.model.eval()

    def feed(self, ids) -> np.ndarray:
        """Feed ``ids``; the logits ``(len(ids), V)`` of the token after each."""
        ids = [int(i) for i in ids]
        with no_grad():
            if self.stateful:
                out, self.state = self.model(Tensor(np.array([ids], np.int64)), self.state)
                return np.asarray(out.data)[0]
            rows = []
            for i in ids:
                self.ids = [*self.ids, i][-self.window :]
                out, _ = self.model(Tensor(np.array([self.ids], np.int64)), None)
                rows.append(np.asarray(out.data)[0, -1])
            return np.stack(rows)


def sample_next(logits: np.ndarray, temperature: float, top_k: int | None,
                rng: np.random.Generator) -> int:  # fmt: skip
    """One token id from ``logits``: the arg-max at temperature 0, else softmax(logits / T)
    over the ``top_k`` most likely."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return int(z.argmax())
    if top_k is not None and top_k < len(z):
        z = np.where(z >= np.partition(z, -top_k)[-top_k], z, -np.inf)
    z = (z - z.max()) / temperature
    p = np.exp(z)
    return int(rng.choice(len(z), p=p / p.sum()))


def generate(checkpoint: str | os.PathLike, prompt: str, length: int = 200,
             temperature: float = 1.0, top_k: int | None = None,
             seed: int | None = 0) -> GenerateResult:  # fmt: skip
    """Sample ``length`` characters after ``prompt`` (same seed, same text)."""
    if length < 1:
        raise BpcliError(f"must be >= 1, got {length}", "--length")
    if not temperature >= 0 or not np.isfinite(temperature):
        raise BpcliError(f"must be a number >= 0, got {temperature}", "--temperature")
    if top_k is not None and top_k < 1:
        raise BpcliError(f"must be >= 1, got {top_k}", "--top-k")
    if not prompt:
        raise BpcliError("give at least one character to start from", "--prompt")
    built, ckpt, path, vocab = _language_run(checkpoint)
    ids = vocab.encode(prompt, "--prompt")
    rng = np.random.default_rng(seed)
    step = _Stepper(built, ckpt)
    logits = step.feed(ids)[-1]
    out = []
    for _ in range(length):
        nxt = sample_next(logits, temperature, top_k, rng)
        out.append(nxt)
        logits = step.feed([nxt])[-1]
    return GenerateResult(str(path), prompt, vocab.decode(np.array(out)), temperature, top_k,
                          seed)  # fmt: skip


def next_token_arrays(built, ckpt, src: Path) -> dict[str, np.ndarray]:
    """``bpcli predict`` of a language model on a text file: after each character, the
    probabilities of the next (``probabilities`` (T, V)), the most likely one's id and
    character, and the vocabulary."""
    try:
        text = src.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BpcliError("no such input file", str(src)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BpcliError(f"a language model predicts on a UTF-8 text file ({e})",
                         str(src)) from None  # fmt: skip
    if not text:
        raise BpcliError("the text is empty", str(src))
    vocab = Vocab("".join(ckpt["classes"]))
    logits = _Stepper(built, ckpt).feed(vocab.encode(text, str(src))).astype(np.float64)
    z = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (z / z.sum(-1, keepdims=True)).astype(np.float32)
    best = probs.argmax(-1)
    return {"probabilities": probs, "next_token": best,
            "next_char": np.array(list(vocab.decode(best)), dtype=str),
            "vocabulary": np.array(list(vocab.chars), dtype=str)}  # fmt: skip
