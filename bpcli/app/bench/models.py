"""``bpcli bench`` workloads built from the shipped specs (models/*.toml) through the library.

The bpcli side is exactly what ``bpcli train`` builds (``build(load_spec(...))``: model, loss,
optimizer, schedule); the PyTorch side is the same architecture, shapes, optimizer, clipping
and schedule written with torch.nn. Each ``make_*`` returns ``(step, forward, flops, t_step)``:
one timed unit per engine, bpcli's forward + loss alone, the forward FLOPs of one unit, and
torch's unit (None without torch).

Both loops read the loss (``item()``) every step as the trainer does; the trainer's extra work
(NaN/Inf guard, metrics, validation, checkpoints) is left out of both.
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np

from bpcli.errors import BpcliError

SPEC_DIR = Path(__file__).resolve().parents[3] / "models"


def specs_available() -> bool:
    return SPEC_DIR.is_dir()


@cache
def _built(name: str):
    from bpcli.app.model.build import build
    from bpcli.app.spec.schema import load_spec

    path = SPEC_DIR / f"{name}.toml"
    if not path.is_file():
        raise BpcliError(f"this workload needs the spec {path}, which ships with the source "
                         "tree, not with the installed package", "bench")  # fmt: skip
    return build(load_spec(path))


def _flops_per_sample(built) -> int:
    from bpcli.app.info.summary import summarize

    return summarize(built.model, built.input_shape).flops


def _torch_optimizer(spec, params):
    import torch

    opt = spec.optimizer
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(opt["type"])
    if cls is None:
        raise BpcliError(f"no PyTorch twin for optimizer {opt['type']!r}", "bench")
    keys = ("lr", "betas", "eps", "weight_decay")
    return cls(params, **{k: tuple(v) if k == "betas" else v
                          for k, v in opt.items() if k in keys})  # fmt: skip


def _warmup_cosine(spec, steps_per_epoch: int):
    """The spec's schedule as a LambdaLR factor of the step (or epoch) count."""
    s = spec.schedule
    per = steps_per_epoch if s["interval"] == "step" else 1
    warmup = s["warmup"]
    t_max = max(1, spec.train["epochs"] * per - warmup)
    start = s["warmup_start_factor"]

    def factor(i: int) -> float:
        if i < warmup:
            return start + (1 - start) * i / warmup
        return 0.5 * (1 + math.cos(math.pi * (i - warmup) / t_max))

    return factor


# -- one epoch of mlp-digits --------------------------------------------------------------------


def make_mlp_digits_epoch(has_torch: bool):
    from bpcli.data import iter_batches

    built = _built("mlp-digits")
    spec, model, opt, sched = built.spec, built.model, built.optimizer, built.scheduler
    loss_fn, train = built.loss_fn, built.splits.train
    x, y, bs = train.x.astype(np.float32, copy=False), train.y, spec.train["batch_size"]
    shuffle = np.random.default_rng(0)

    def step():
        model.train()
        for xb, yb in iter_batches(x, y, bs, True, shuffle):
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            loss.item()
            opt.step()
        if sched is not None:
            sched.step()

    def forward():
        for xb, yb in iter_batches(x, y, bs, False):
            loss_fn(model(xb), yb).item()

    flops = _flops_per_sample(built) * len(x)
    return step, forward, flops, _mlp_digits_torch(built, x, y) if has_torch else None


def _mlp_digits_torch(built, x, y):
    import torch
    from torch import nn

    from bpcli.nn.layers.dropout import Dropout
    from bpcli.nn.layers.linear import Linear

    layers = []
    for m in built.model:  # linear / relu / dropout only, as the spec says
        if isinstance(m, Linear):
            layers.append(nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, Dropout):
            layers.append(nn.Dropout(m.p))
        else:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = _torch_optimizer(built.spec, model.parameters())
    factor = _warmup_cosine(built.spec, built.steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    bs = built.spec.train["batch_size"]
    gen = torch.Generator().manual_seed(0)

    def step():
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        xs, ys = xt[perm], yt[perm]
        for i in range(0, len(xs), bs):
            loss = nn.functional.cross_entropy(model(xs[i : i + bs]), ys[i : i + bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            loss.item()
            opt.step()
        sched.step()

    return step


# -- one truncated-BPTT step of the language specs ----------------------------------------------


def _lm_step(built):
    """bpcli's step and forward on the first window of the training stream, as the trainer."""
    from bpcli.data import bptt_windows, stream_of
    from bpcli.nn.layers.lm import detach_state
    from bpcli.optim import clip_grad_norm_

    spec, model, opt, sched, loss_fn = (built.spec, built.model, built.optimizer,
                                        built.scheduler, built.loss_fn)  # fmt: skip
    xb, yb = next(bptt_windows(stream_of(built.splits.train), spec.train["batch_size"],
                               spec.train["bptt"]))  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    clip = spec.train["clip_grad_norm"]
    per_step = sched is not None and built.schedule_interval == "step"
    state = [None]

    def step():
        out, hidden = model(xb, state[0])
        loss = loss_fn(out, yb)
        opt.zero_grad()
        loss.backward()
        loss.item()
        if clip is not None:
            clip_grad_norm_(params, clip)
        opt.step()
        if per_step:
            sched.step()
        if built.stateful:
            state[0] = detach_state(hidden)

    def forward():
        return loss_fn(model(xb, state[0])[0], yb).item()

    flops = _flops_per_sample(built) * len(xb)
    return step, forward, flops, (xb, yb)


def _torch_lm_step(built, modules, run, window):
    """torch's twin of ``_lm_step``: ``run(x, state) -> (logits, state)`` over ``modules``."""
    import torch

    spec = built.spec
    params = [p for m in modules for p in m.parameters()]
    opt = _torch_optimizer(spec, params)
    sched = None
    if built.scheduler is not None and built.schedule_interval == "step":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(spec, built.steps_per_epoch))
    x, y = (torch.from_numpy(a.astype(np.int64)) for a in window)
    clip = spec.train["clip_grad_norm"]
    state = [None]

    def step():
        for m in modules:
            m.train()
        out, hidden = run(x, state[0])
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        loss.item()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        if sched is not None:
            sched.step()
        if hidden is not None:
            state[0] = tuple(h.detach() for h in hidden)

    return step


def make_lstm(has_torch: bool):
    built = _built("char-lstm")
    step, forward, flops, window = _lm_step(built)
    return step, forward, flops, _lstm_torch(built, window) if has_torch else None


def _lstm_torch(built, window):
    from torch import nn

    m = built.model
    if m.cell != "lstm":
        raise BpcliError(f"char-lstm's cell is {m.cell!r}; the bench expects 'lstm'", "bench")
    embed = nn.Embedding(m.vocab_size, m.embed.embedding_dim)
    between = m.rnn.dropout if m.rnn.num_layers > 1 else 0.0  # torch warns otherwise
    rnn = nn.LSTM(m.rnn.input_size, m.rnn.hidden_size, m.rnn.num_layers, batch_first=True,
                  dropout=between)  # fmt: skip
    drop, head = nn.Dropout(m.drop.p), nn.Linear(m.rnn.hidden_size, m.vocab_size)

    def run(x, state):
        out, state = rnn(embed(x), state)
        return head(drop(out)), state

    return _torch_lm_step(built, [embed, rnn, drop, head], run, window)


def make_transformer(has_torch: bool):
    built = _built("tiny-transformer")
    step, forward, flops, window = _lm_step(built)
    return step, forward, flops, _transformer_torch(built, window) if has_torch else None


def _transformer_torch(built, window):
    import torch
    from torch import nn

    m = built.model
    layer = m.encoder.layers[0]
    d, t = m.embed.embedding_dim, window[0].shape[1]
    embed = nn.Embedding(m.vocab_size, d)
    pos = nn.Parameter(torch.randn(m.max_len, d) * 0.02)
    drop = nn.Dropout(m.drop.p)
    enc_layer = nn.TransformerEncoderLayer(
        d, layer.nhead, layer.dim_feedforward, layer.dropout_p, layer.activation,
        layer.layer_norm_eps, batch_first=True, norm_first=True,
    )  # fmt: skip
    encoder = nn.TransformerEncoder(enc_layer, m.encoder.num_layers, norm=nn.LayerNorm(d),
                                    enable_nested_tensor=False)  # fmt: skip
    head = nn.Linear(d, m.vocab_size)
    holder = nn.Module()  # so the position table is found by parameters()
    holder.pos = pos
    mask = nn.Transformer.generate_square_subsequent_mask(t)

    def run(x, state):
        h = drop(embed(x) + pos[: x.shape[1]])
        return head(encoder(h, mask=mask, is_causal=True)), None

    return _torch_lm_step(built, [embed, holder, drop, encoder, head], run, window)
