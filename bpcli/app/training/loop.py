"""The training loop: ``train(spec) -> TrainResult``, run directory, checkpoints, metrics.

Seeding: ``bp.manual_seed(spec.seed)`` before the model is built (initialisation and dropout
draw from it) and one numpy Generator seeded from ``(seed, 1)`` for the shuffle order; both
states go into every checkpoint, so a resumed run continues exactly (mid-epoch too).

Metrics (``metrics.jsonl``, ``TrainResult.metrics``): ``train_loss``, ``train_accuracy``,
``val_loss``, ``val_accuracy`` (classification and language), ``val_perplexity`` (language),
``test_*`` likewise, ``lr``, ``epoch``, ``step``; timing fields ``seconds`` and
``samples_per_s`` are the only ones that differ between identical runs.

The best checkpoint is chosen by ``train.early_stopping.metric`` (default ``val_loss``, or
``train_loss`` without a val split); test metrics at the end use the best parameters.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpcli.app.store import runs
from bpcli.app.store.checkpoint import (
    check_same_spec,
    link_checkpoint,
    load_checkpoint,
    require,
    save_checkpoint,
)
from bpcli.app.store.checkpoint import spec_hash as hash_spec
from bpcli.app.training.evaluate import Meter, measure
from bpcli.app.training.state import LoopState, find_nonfinite
from bpcli.data import bptt_windows, iter_batches, n_batches, n_bptt_windows, stream_of
from bpcli.engine import random as bprandom
from bpcli.errors import BpcliError
from bpcli.nn.layers.lm import detach_state
from bpcli.optim import clip_grad_norm_, clip_grad_value_
from bpcli.optim.schedules_more import ReduceLROnPlateau

STOP_REASONS = ("completed", "early_stopping", "interrupted", "non-finite")
TIMING = ("seconds", "samples_per_s")


class Reporter:
    """What the CLI renders; every method is a no-op here, override the ones you need."""

    def on_start(self, info: dict[str, Any]) -> None: ...
    def on_batch(self, epoch: int, batch: int, n_batches: int, loss: float,
                 samples_per_s: float) -> None: ...  # fmt: skip
    def on_epoch_end(self, epoch: int, metrics: dict[str, Any]) -> None: ...
    def on_end(self, result: TrainResult) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_diagnostics(self, epoch: int, step: int, report: Any) -> None: ...


@dataclass
class TrainResult:
    """The outcome of ``train``.

    Attributes:
        run_dir: where spec.toml, manifest.json, metrics.jsonl, last.npz and best.npz are.
        best_epoch: the epoch whose parameters best.npz holds (None if no epoch finished).
        epochs_run: epochs completed in total (a resumed run counts the earlier ones too).
        metrics: the best epoch's record plus ``test_*`` computed with the best parameters.
        history: one record per completed epoch.
        seconds: wall time of this call.
        stopped_reason: one of ``completed``, ``early_stopping``, ``interrupted``,
            ``non-finite`` (the CLI exits non-zero on the last).
        message: why it stopped, and how to resume, for the last two reasons.
    """

    run_dir: Path
    best_epoch: int | None
    epochs_run: int
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_reason: str = "completed"
    message: str = ""
    monitor: str = "val_loss"
    task: str = "classification"
    step: int = 0

    @property
    def ok(self) -> bool:
        return self.stopped_reason in ("completed", "early_stopping", "interrupted")

    @property
    def checkpoints(self) -> dict[str, Path]:
        return {k: self.run_dir / f for k, f in (("last", runs.LAST), ("best", runs.BEST))
                if (self.run_dir / f).exists()}  # fmt: skip


@dataclass
class Run:
    """What plugin callbacks receive as ``run``."""

    run_dir: Path
    spec: Any
    model: Any
    optimizer: Any
    history: list[dict[str, Any]]
    result: TrainResult | None = None


class _Interrupt:
    """The first Ctrl-C sets a flag checked between steps (the step in flight completes);
    a second one raises KeyboardInterrupt as usual."""

    def __init__(self):
        self.flag = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag:
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def train(spec, out_dir=None, resume=None, overwrite: bool = False,
          reporter: Reporter | None = None, argv: list[str] | None = None,
          epochs: int | None = None, diagnose: int | str | None = None,
          par=None) -> TrainResult:  # fmt: skip
    """Train the model a resolved ``Spec`` describes.

    Args:
        spec: a ``bpcli.app.spec.schema.Spec``.
        out_dir: the run directory (default ``runs/<name>-<timestamp>``); must not exist or be
            empty unless ``overwrite``.
        resume: a run directory to continue from its ``last.npz`` (the spec must match).
        overwrite: reuse a non-empty ``out_dir`` (only the files a run writes are replaced).
        reporter: receives progress (see ``Reporter``).
        argv: the command line recorded in the manifest (default ``sys.argv``).
        epochs: total epochs to reach (default ``spec.train["epochs"]``).
        diagnose: gradient diagnostics (``bpcli.app.diagnostics.collect``): None off, ``"epoch"`` at
            the first step and each epoch's last step, N also every N steps. Each check point
            goes to ``reporter.on_diagnostics`` and to metrics.jsonl as a ``"diag"`` line, at
            the end of its epoch (or of the run, for the check points of an unfinished one).
        par: this rank's ``bpcli.dist.parallel.DataParallel`` under MPI (None: one process).
            Each global batch is split over the ranks and the gradients averaged; only rank 0
            writes (run directory, metrics, checkpoints) and runs the diagnostics.
    """
    from bpcli.app.model.build import build

    t0 = time.perf_counter()
    reporter = reporter or Reporter()
    spec_dict = spec.to_dict()
    total = spec.train["epochs"] if epochs is None else epochs
    if not (isinstance(total, int) and total >= 1):
        raise BpcliError(f"must be an integer >= 1, got {total!r}", "--epochs")
    ckpt = None
    if resume is not None:
        run_dir = runs.resume_run_dir(resume)
        ckpt = load_checkpoint(run_dir / runs.LAST)
        require(ckpt, ("spec_hash", "model", "optim", "position", "rng", "history"),
                run_dir / runs.LAST)  # fmt: skip
        check_same_spec(ckpt, spec_dict, run_dir / runs.LAST)
    bprandom.manual_seed(spec.seed)
    built = build(spec)
    st = LoopState(spec, built, total, hash_spec(spec_dict))
    if ckpt is not None:
        st.load(ckpt, run_dir / runs.LAST)
    if par is not None:
        par.setup(st, built)  # the ranks agree and start from rank 0's state
    writes = par is None or par.writes
    # Everything that can be refused has been checked before the run directory is touched.
    if ckpt is not None:
        if writes:
            runs.note_resume(run_dir, st.epoch, st.step, argv)
    elif par is not None:
        run_dir = par.on_root(lambda: _new_run_dir(spec, built, out_dir, overwrite, argv))
    else:
        run_dir = _new_run_dir(spec, built, out_dir, overwrite, argv)
    log = (runs.MetricsLog(run_dir / runs.METRICS_FILE,
                           keep_until_step=st.step if ckpt is not None else None)
           if writes else _NoLog())  # fmt: skip
    run = Run(run_dir, spec, built.model, built.optimizer, st.history)
    diag = _diagnostics(spec, built, diagnose if writes else None, log, reporter)
    hook = _hooks()
    try:
        with _Interrupt() as intr:
            reporter.on_start(_info(spec, built, run_dir, st, resume))
            hook.bpcli_on_train_start(run=run)
            try:
                reason, message = _loop(st, built, spec, run_dir, log, reporter,
                                        intr if par is None else par.agreed(intr), hook, run,
                                        diag, par)  # fmt: skip
            except KeyboardInterrupt:
                # A second Ctrl-C outside forward/backward (mid-update, mid-save): what is in
                # memory may be torn, so nothing is saved; last.npz is the last complete one.
                reason, message = (
                    "interrupted",
                    (
                        f"interrupted at step {st.step}; nothing saved, the last checkpoint is "
                        f"{run_dir / runs.LAST}. Resume with: bpcli train "
                        f"{_source(spec, run_dir)} --resume {run_dir}"
                    ),
                )
                reporter.on_message(message)
            if diag is not None:
                diag.flush()  # an unfinished epoch's check points (the non-finite step's too)
    finally:
        log.close()
        if diag is not None:
            diag.close()  # its hooks off the model, whatever ended the run
        if par is not None:
            par.finish()
    result = _finish(st, built, spec, run_dir, reason, message, time.perf_counter() - t0, par)
    run.result = result
    hook.bpcli_on_train_end(run=run)
    reporter.on_end(result)
    return result


def _new_run_dir(spec, built, out_dir, overwrite: bool, argv) -> Path:
    run_dir = runs.prepare_run_dir(out_dir, spec.name, overwrite)
    runs.write_spec(run_dir, spec)
    splits = {k: None if d is None else d.content_hash()
              for k, d in built.splits._asdict().items()}  # fmt: skip
    data = {**built.dataset, "split_sha256": splits}
    runs.write_manifest(run_dir, runs.build_manifest(spec.seed, data, argv))
    return run_dir


class _NoLog:
    """The metrics log of a rank that does not write (every rank but 0 under MPI)."""

    def write(self, record) -> None: ...
    def write_lines(self, lines) -> None: ...
    def close(self) -> None: ...


def _hooks():
    from bpcli.plugins.manager import get_manager

    return get_manager().hook


def _info(spec, built, run_dir, st: LoopState, resume) -> dict[str, Any]:
    train_ds = built.splits.train
    bs, bptt = spec.train["batch_size"], spec.train["bptt"]
    if built.task == "language":
        nb = n_bptt_windows(len(train_ds) + 1, bs, bptt)
    else:
        nb = n_batches(len(train_ds), bs)
    return {
        "name": spec.name, "run_dir": str(run_dir), "epochs": st.total, "start_epoch": st.epoch,
        "n_batches": nb, "batch_size": bs, "n_train": len(train_ds), "task": built.task,
        "n_val": len(built.splits.val) if built.splits.val is not None else 0,
        "n_params": built.model.num_parameters(), "monitor": st.monitor,
        "resumed_from": None if resume is None else str(resume),
        "notes": _import_notes(built.model),
    }  # fmt: skip


def _import_notes(model) -> list[str]:
    """What an imported ONNX graph's summary says that changes what trains."""
    if not hasattr(model, "_outputs") or not callable(getattr(model, "summary", None)):
        return []
    s = model.summary()
    notes = []
    if s.upcast:
        notes.append(f"float16/bfloat16 graph upcast to float32 ({s.upcast} tensors and types)")
    if s.frozen:
        notes.append(f"{len(s.frozen)} of {len(s.frozen) + len(s.trainable)} parameter tensors "
                     "frozen")  # fmt: skip
    if s.untied:
        notes.append("untied shared initializers: " + ", ".join(s.untied))
    return notes


def _diagnostics(spec, built, diagnose, log, reporter):
    if diagnose is None:
        return None
    from bpcli.app.diagnostics.collect import Diagnostics, parse_every

    context = {"init": spec.model.get("init"), "bptt": spec.train["bptt"] if built.stateful
               else None}  # fmt: skip

    def sink(lines, reports) -> None:
        log.write_lines(lines)
        for r in reports:
            reporter.on_diagnostics(r.epoch, r.step, r)

    # A reporter that does not read check points spares the making of their report objects.
    reads = type(reporter).on_diagnostics is not Reporter.on_diagnostics
    return Diagnostics(built.model, built.optimizer, parse_every(diagnose), context, sink, reads)


def _loop(st: LoopState, built, spec, run_dir: Path, log, reporter, intr, hook, run, diag=None,
          par=None):  # fmt: skip
    """Epochs until done; returns ``(stopped_reason, message)``."""
    model, opt, sched = built.model, built.optimizer, built.scheduler
    per_step = sched is not None and built.schedule_interval == "step"
    plateau = isinstance(sched, ReduceLROnPlateau)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    tensors = [p for _, p in params]
    clip_norm, clip_value = spec.train["clip_grad_norm"], spec.train["clip_grad_value"]
    bs, bptt, log_every = spec.train["batch_size"], spec.train["bptt"], spec.train["log_every"]
    train_ds = built.splits.train
    lm, carry = built.task == "language", built.stateful
    stream = stream_of(train_ds) if lm else None
    engine_rng = bprandom.default_rng()
    while st.epoch < st.total:
        epoch = st.epoch + 1
        if st.batch == 0:
            st.epoch_shuffle = st.shuffle.bit_generator.state
            st.meter = Meter(built.task)
            st.epoch_seconds = 0.0
        else:
            st.shuffle.bit_generator.state = st.epoch_shuffle
        if lm:
            nb = n_bptt_windows(len(stream), bs, bptt)
            batches = bptt_windows(stream, bs, bptt)
        else:
            nb = n_batches(len(train_ds), bs)
            batches = iter_batches(train_ds.x, train_ds.y, bs, True, st.shuffle)
        model.train()
        t_epoch = time.perf_counter()
        seen = 0
        for b, (xb, yb) in enumerate(batches):
            if b < st.batch:
                continue
            if par is not None:
                xb, yb = par.shard(xb, yb)
            if intr.flag:
                st.epoch_seconds += time.perf_counter() - t_epoch
                return _interrupted(st, built, run_dir, reporter, par)
            rng_before = engine_rng.bit_generator.state
            checking = diag is not None and diag.wants(st.step + 1, b == nb - 1)
            if checking:
                diag.begin()
            try:
                if lm:
                    state_in = diag.track_state(st.hidden) if checking and carry else st.hidden
                    out, hidden = model(xb, state_in)
                else:
                    out = model(xb)
                loss = built.loss_fn(out, yb)
                opt.zero_grad()
                loss.backward()
            except KeyboardInterrupt:
                # A second Ctrl-C mid-step: the step is abandoned, nothing was updated.
                engine_rng.bit_generator.state = rng_before
                st.epoch_seconds += time.perf_counter() - t_epoch
                if checking:
                    diag.abandon()
                return _interrupted(st, built, run_dir, reporter, par)
            lv = float(loss.item())
            if par is not None:
                lv = par.reduce_step(tensors, lv, out.data, yb, built.task)
            bad = find_nonfinite(params, lv)
            if diag is not None and (checking or bad is not None):
                diag.after_backward(epoch, st.step + 1)
            if bad is not None:
                if diag is not None:
                    diag.abandon()  # kept without an update; flagged when the run stops
                msg = _nonfinite_message(st, epoch, b, lv, bad, run_dir)
                reporter.on_message(msg)
                return "non-finite", msg
            if clip_norm is not None:
                clip_grad_norm_(tensors, clip_norm)
            if clip_value is not None:
                clip_grad_value_(tensors, clip_value)
            opt.step()
            if checking:
                diag.after_step()
            if per_step:
                sched.step()
            if carry:
                st.hidden = detach_state(hidden)
            st.step += 1
            st.batch = b + 1
            if par is None:
                n = len(yb)
                st.meter.add(lv, out.data, yb)
            else:
                n = par.add_to(st.meter)  # the global batch's sums, reduced with the gradients
            seen += n
            if st.step % log_every == 0:
                log.write({"kind": "step", "epoch": epoch, "step": st.step, "loss": lv,
                           "lr": opt.param_groups[0]["lr"]})  # fmt: skip
            elapsed = time.perf_counter() - t_epoch
            reporter.on_batch(epoch, b + 1, nb, lv, seen / elapsed if elapsed > 0 else 0.0)
        if diag is not None:
            diag.flush()  # the epoch's check points: lines, flags, reports (timed with it)
        st.epoch_seconds += time.perf_counter() - t_epoch
        record = _end_epoch(st, built, spec, epoch, seen, par)
        if sched is not None and not per_step:
            sched.step(record[st.monitor]) if plateau else sched.step()
        improved = st.update_best(record)
        st.history.append(record)
        st.epoch, st.batch, st.hidden = epoch, 0, None
        log.write(record)
        if par is None or par.writes:
            save_checkpoint(run_dir / runs.LAST, st.payload())
        if improved:
            # NOTE: best is last at this moment: a hard link costs no second write and fsync.
            st.best_state = {k: v.copy() for k, v in model.state_dict().items()}
            if par is None or par.writes:
                link_checkpoint(run_dir / runs.LAST, run_dir / runs.BEST)
        reporter.on_epoch_end(epoch, record)
        hook.bpcli_on_epoch_end(run=run, epoch=epoch, metrics=record)
        if st.should_stop():
            return "early_stopping", (
                f"early stopping: {st.monitor} did not improve for {st.patience} epochs "
                f"(best {st.best:.4g} at epoch {st.best_epoch})"
            )
        if intr.flag:
            return _interrupted(st, built, run_dir, reporter, par)
    return "completed", ""


def _end_epoch(st: LoopState, built, spec, epoch: int, seen: int, par=None) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": "epoch", "epoch": epoch, "step": st.step,
                              "lr": built.optimizer.param_groups[0]["lr"]}  # fmt: skip
    record.update(st.meter.result("train_"))
    if built.splits.val is not None:
        val, _ = (measure if par is None else par.measure)(
            built, built.splits.val, spec.train["batch_size"], spec.train["bptt"], prefix="val_"
        )
        record.update(val)
    record["seconds"] = st.epoch_seconds
    record["samples_per_s"] = seen / st.epoch_seconds if st.epoch_seconds > 0 else 0.0
    return record


def _interrupted(st: LoopState, built, run_dir: Path, reporter, par=None) -> tuple[str, str]:
    if par is None or par.writes:
        save_checkpoint(run_dir / runs.LAST, st.payload())
    where = f"epoch {st.epoch + 1}, batch {st.batch}" if st.batch else f"epoch {st.epoch}"
    msg = (
        f"interrupted after step {st.step} ({where}); saved {run_dir / runs.LAST}. "
        f"Resume with: bpcli train {_source(st.spec, run_dir)} --resume {run_dir}"
    )
    reporter.on_message(msg)
    return "interrupted", msg


def _source(spec, run_dir: Path) -> str:
    src = spec.source
    return src if src and not src.startswith("<") else str(run_dir / runs.SPEC_FILE)


def _nonfinite_message(st: LoopState, epoch: int, batch: int, lv: float, bad, run_dir) -> str:
    what = (f"the gradient of {bad[0]} ({bad[1]})" if bad[0] else "the loss")  # fmt: skip
    keep = (
        f"the last good checkpoint is {run_dir / runs.LAST} (epoch {st.epoch})"
        if st.epoch > 0 or st.batch > 0
        else "no checkpoint was written (no epoch finished)"
    )
    return (
        f"non-finite values at step {st.step + 1} (epoch {epoch}, batch {batch + 1}): loss "
        f"{lv}; first non-finite: {what}; stopped before the update, {keep}. Try a lower lr "
        f"or gradient clipping (train.clip_grad_norm)"
    )


def _finish(st: LoopState, built, spec, run_dir, reason, message, seconds,
            par=None) -> TrainResult:  # fmt: skip
    metrics: dict[str, Any] = {}
    if st.best_epoch is not None:
        metrics = {k: v for k, v in st.history_record(st.best_epoch).items()
                   if k not in ("kind", *TIMING)}  # fmt: skip
    test = built.splits.test
    if test is not None and reason != "non-finite" and st.history:
        if st.best_state is None and (run_dir / runs.BEST).exists():
            st.best_state = load_checkpoint(run_dir / runs.BEST)["model"]
        if st.best_state is not None:
            built.model.load_state_dict(st.best_state)
        tm, _ = (measure if par is None else par.measure)(
            built, test, spec.train["batch_size"], spec.train["bptt"], "test_"
        )
        metrics.update(tm)
    return TrainResult(run_dir, st.best_epoch, st.epoch, metrics, list(st.history), seconds,
                       reason, message, st.monitor, built.task, st.step)  # fmt: skip
