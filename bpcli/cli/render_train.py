"""Rendering of ``bpcli train``: live Rich progress, ``--json`` lines or one ``--quiet`` line.

Each class here implements the trainer's Reporter protocol
(``bpcli.app.training.loop``): the trainer
calls it, it only draws. Nothing here reads training state beyond what it is handed.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

# The metrics a final line or summary leads with, in this order; others follow sorted.
_LEAD = (
    "test_accuracy",
    "test_perplexity",
    "test_loss",
    "val_accuracy",
    "val_perplexity",
    "val_loss",
    "train_accuracy",
    "train_loss",
)
_FINAL_KEYS = ("best_epoch", "epochs_run", "run_dir", "seconds", "stopped_reason")
# Bookkeeping fields of a metrics record that are not metrics.
_NOT_METRICS = ("kind", "epoch", "step")


def _get(obj, key: str, default=None):
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def fmt_metric(name: str, value) -> str:
    """One metric as a user reads it: accuracy in %, loss to 4 places, lr in e-notation."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if name.endswith("accuracy"):
        return f"{100 * value:.2f}%"
    if name.endswith("perplexity"):
        return f"{value:.2f}"
    if name == "lr" or name.endswith("_lr"):
        return f"{value:.3g}"
    if name.endswith("seconds"):
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if name.endswith("samples_per_s"):
        return f"{value:,.0f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1e5 else f"{value:.4g}"


def _si(x: float) -> str:
    return f"{x / 1e6:.1f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e4 else f"{x:.0f}"


def _short(name: str) -> str:
    return name.replace("accuracy", "acc").replace("perplexity", "ppl")


def ordered(metrics: Mapping) -> list[tuple[str, object]]:
    lead = [(k, metrics[k]) for k in _LEAD if k in metrics]
    rest = sorted((k, v) for k, v in metrics.items() if k not in _LEAD and k not in _NOT_METRICS)
    return lead + rest


def epoch_line(epoch: int, epochs: int | None, metrics: Mapping) -> str:
    """``epoch  3/10  train loss 0.1234 acc 96.10%  val loss 0.0987 acc 97.25%  lr 0.01  2.1 s``."""
    width = len(str(epochs)) if epochs else 1
    head = f"epoch {epoch:>{width}}/{epochs}" if epochs else f"epoch {epoch}"
    parts = []
    for split in ("train", "val"):
        shown = [
            f"{m[:3] if m != 'loss' else m} {fmt_metric(m, metrics[f'{split}_{m}'])}"
            for m in ("loss", "accuracy", "perplexity")
            if f"{split}_{m}" in metrics
        ]
        if shown:
            parts.append(f"{split} " + " ".join(shown))
    if "lr" in metrics:
        parts.append(f"lr {fmt_metric('lr', metrics['lr'])}")
    if "seconds" in metrics:
        parts.append(fmt_metric("seconds", metrics["seconds"]))
    return "  ".join([head, *parts])


def final_line(result) -> str:
    """The one line ``--quiet`` prints and the Rich summary ends with."""
    metrics = dict(_get(result, "metrics", None) or {})
    shown = [(k, v) for k, v in ordered(metrics) if k.startswith("test")] or ordered(metrics)[:2]
    parts = [f"{k.replace('_', ' ')} {fmt_metric(k, v)}" for k, v in shown]
    best = _get(result, "best_epoch")
    if best is not None:
        parts.append(f"best epoch {best}")
    seconds = _get(result, "seconds")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    reason = _get(result, "stopped_reason")
    if reason and reason not in ("completed", "finished", "done", "epochs"):
        parts.append(f"stopped: {reason}")
    parts.append(f"run dir {_get(result, 'run_dir')}")
    return "  ".join(parts)


def final_object(result) -> dict:
    """The last ``--json`` line: every final metric plus best_epoch, run_dir, seconds, ..."""
    obj = dict(_get(result, "metrics", None) or {})
    for key in _FINAL_KEYS:
        value = _get(result, key)
        obj[key] = str(value) if key == "run_dir" and value is not None else value
    return obj


def _to_jsonable(v):
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


def _dumps(obj: Mapping) -> str:
    return json.dumps({k: _to_jsonable(v) for k, v in obj.items()}, default=str)


class JsonReporter:
    """``--json``: one object per epoch, one final object; notes go to stderr."""

    shown: tuple[str, ...] = ()  # messages already on stderr, not to repeat there

    def on_start(self, info) -> None:
        pass

    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s) -> None:
        pass

    def on_epoch_end(self, epoch, metrics) -> None:
        print(self._with_diag(_dumps({"epoch": epoch, **metrics})), flush=True)

    def on_end(self, result) -> None:
        print(self._with_diag(_dumps(final_object(result))), flush=True)

    def on_diagnostics(self, epoch, step, report) -> None:
        # Check points ride on the next epoch (or final) object: still one line per epoch.
        self.__dict__.setdefault("_diag", []).append(report)

    def _with_diag(self, text: str) -> str:
        """``text`` (a JSON object) with the check points since the last line as its
        ``"diagnostics"``: each report's own JSON, its metrics.jsonl line (json.dumps of
        ``to_dict()`` would cost ~35 us a check point, at every step with --diagnose=1)."""
        diag, self._diag = getattr(self, "_diag", []), []
        if not diag:
            return text
        items = ", ".join(r.to_json() for r in diag)
        return f'{text[:-1]}{", " if text != "{}" else ""}"diagnostics": [{items}]}}'

    def on_message(self, text) -> None:
        self.shown = (*self.shown, text)
        print(f"bpcli: {text}", file=sys.stderr, flush=True)


class QuietReporter(JsonReporter):
    """``--quiet``: the final line alone on stdout."""

    def on_epoch_end(self, epoch, metrics) -> None:
        pass

    def on_end(self, result) -> None:
        print(final_line(result), flush=True)


class RichReporter:
    """Live progress: an epoch bar and a batch bar, a line per epoch, a summary table."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)
        self.progress: Progress | None = None
        self.epochs: int | None = None
        self.name = ""
        self._epoch_task = self._batch_task = None
        self._loss_sum = 0.0
        self._loss_n = 0
        self._task_kind = "classification"
        self._last_epoch_stats = ""
        self.shown: tuple[str, ...] = ()  # messages already on stderr: none, all on stdout
        self._said: list[str] = []
        self._diag: list = []  # check points of gradient diagnostics

    def on_start(self, info) -> None:
        self.epochs = _get(info, "epochs")
        self.name = _get(info, "name", "") or ""
        self._task_kind = _get(info, "task", "classification") or "classification"
        start = _get(info, "start_epoch", 0) or 0
        head = [f"[bold]{self.name}[/bold]"] if self.name else []
        for key, label in (("n_params", "params"), ("n_train", "train"), ("n_val", "val"),
                           ("n_test", "test"), ("run_dir", "run dir")):  # fmt: skip
            value = _get(info, key)
            if value is not None:
                value = f"{value:,}" if isinstance(value, int) else value
                head.append(f"{label} {value}")
        if start:
            head.append(f"resuming after epoch {start}")
        if head:
            self.console.print("  ".join(str(h) for h in head))
        for note in _get(info, "notes") or ():
            self.console.print(f"[dim]{note}[/dim]")
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=28),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TextColumn("•"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self._epoch_task = self.progress.add_task(
            "epochs", total=self.epochs, completed=start, stats=""
        )
        self._batch_task = self.progress.add_task("batches", total=None, stats="")

    def on_batch(self, epoch, batch, n_batches, loss, samples_per_s) -> None:
        if self.progress is None:
            return
        if batch <= 1:
            self._loss_sum, self._loss_n = 0.0, 0
            self.progress.reset(self._batch_task, total=n_batches, stats="")
        if loss is not None and math.isfinite(loss):
            self._loss_sum += float(loss)
            self._loss_n += 1
        mean = self._loss_sum / self._loss_n if self._loss_n else float("nan")
        stats = f"loss {mean:.4f}"
        if self._task_kind == "language" and math.isfinite(mean):
            stats += f"  ppl {math.exp(min(mean, 50.0)):.2f}"
        if samples_per_s:
            stats += f"  {_si(samples_per_s)} samples/s"
        self.progress.update(
            self._batch_task,
            completed=batch,
            total=n_batches,
            description=f"epoch {epoch}",
            stats=stats,
        )

    def on_epoch_end(self, epoch, metrics) -> None:
        line = epoch_line(epoch, self.epochs, metrics)
        if self.progress is None:
            self.console.print(line, soft_wrap=True)
            return
        self.progress.console.print(line, soft_wrap=True)
        if self._diag and self._diag[-1].epoch == epoch:
            from bpcli.cli.render_diag import compact_line

            self.progress.console.print(compact_line(self._diag[-1]), soft_wrap=True)
        for k in ("val_accuracy", "val_perplexity", "val_loss"):
            if k in metrics:
                self._last_epoch_stats = f"{_short(k)} {fmt_metric(k, metrics[k])}"
                break
        self.progress.update(self._epoch_task, completed=epoch, stats=self._last_epoch_stats)

    def on_message(self, text) -> None:
        (self.progress.console if self.progress else self.console).print(f"[yellow]{text}[/yellow]")

    def on_diagnostics(self, epoch, step, report) -> None:
        self._diag.append(report)

    def on_end(self, result) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self._diag:
            from bpcli.cli.render_diag import diag_table, flag_lines

            series: dict[str, list[float]] = {}
            for r in self._diag:
                for name, v in r.layer_norms().items():
                    series.setdefault(name, []).append(v)
            last = self._diag[-1]
            width = 16 if self.console.width >= 120 else 0  # no trend column in narrow ones
            self.console.print(diag_table(last, series, trend_width=width))
            if last.flags:
                self.console.print(flag_lines(last.flags))
            self.console.print()
        self.console.print(summary_table(result, said=self._said))
        self.console.print(final_line(result), soft_wrap=True)


def _files(run_dir) -> str:
    try:
        names = sorted(os.listdir(run_dir))
    except (OSError, TypeError):
        return "—"
    return ", ".join(n + ("/" if os.path.isdir(os.path.join(run_dir, n)) else "") for n in names)


def summary_table(result, said=()) -> Table:
    """Best epoch, final metrics, time, the run directory and what it holds."""
    table = Table(title="Training summary", show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    reason = _get(result, "stopped_reason")
    message = _get(result, "message")
    rows = [
        ("stopped", f"{reason}: {message}" if message and message not in said else reason),
        ("epochs run", _get(result, "epochs_run")),
        ("best epoch", _get(result, "best_epoch")),
    ]
    rows += [(_short(k).replace("_", " "), fmt_metric(k, v))
             for k, v in ordered(_get(result, "metrics", None) or {})]  # fmt: skip
    seconds = _get(result, "seconds")
    rows.append(("time", None if seconds is None else f"{seconds:.1f} s"))
    run_dir = _get(result, "run_dir")
    rows += [("run dir", run_dir), ("files", _files(run_dir))]
    for key, value in rows:
        if value is not None:
            table.add_row(key, str(value))
    return table


# -- eval, predict, info ----------------------------------------------------------------------
def _plain(obj) -> dict:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    return dict(vars(obj))


def confusion_table(matrix, labels=None) -> Table:
    """Rows are true classes, columns predicted ones; the diagonal in green."""
    n = len(matrix)
    labels = [str(x) for x in (labels if labels is not None else range(n))]
    table = Table(title="Confusion matrix (rows: true, columns: predicted)", title_justify="left")
    table.add_column("true", style="bold", justify="right")
    for lab in labels:
        table.add_column(lab, justify="right")
    table.add_column("recall", justify="right")
    for i, row in enumerate(matrix):
        total = int(sum(row))
        cells = [_cell(int(v), i == j) for j, v in enumerate(row)]
        recall = f"{100 * int(row[i]) / total:.1f}%" if total else "—"
        table.add_row(labels[i], *cells, recall)
    return table


def _cell(v: int, diagonal: bool) -> str:
    if diagonal:
        return f"[green]{v}[/green]"
    return f"[red]{v}[/red]" if v else "[dim]0[/dim]"


def eval_result(result, as_json: bool = False) -> None:
    metrics = dict(_get(result, "metrics", None) or {})
    matrix = _get(result, "confusion")
    warn(_get(result, "warnings"))
    if as_json:
        obj = dict(metrics)
        for key in ("checkpoint", "dataset", "task", "n_samples", "epoch"):
            value = _get(result, key)
            if value is not None:
                obj[key] = str(value) if isinstance(value, os.PathLike) else value
        if matrix is not None:
            obj["confusion"] = [[int(v) for v in row] for row in matrix]
        print(_dumps(obj))
        return
    out = Console(highlight=False)
    head = [str(x) for x in (_get(result, "checkpoint"), _get(result, "dataset")) if x]
    if _get(result, "epoch") is not None:
        head.append(f"epoch {_get(result, 'epoch')}")
    n = _get(result, "n_samples")
    if n is not None:
        head.append(f"{n:,} samples")
    if head:
        out.print("  ".join(head))
    out.print("  ".join(f"{k} {fmt_metric(k, v)}" for k, v in ordered(metrics)))
    if matrix is not None:
        out.print(confusion_table(matrix, _get(result, "classes")))


def warn(notes) -> None:
    """Warnings about the inputs, one line each on stderr (so --json stays parseable)."""
    for note in notes or []:
        print(f"bpcli: warning: {note}", file=sys.stderr)


def predict_result(result, as_json: bool = False) -> None:
    obj = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in _plain(result).items()}
    warn(obj.get("warnings"))
    if as_json:
        print(_dumps(obj))
        return
    keys = ", ".join(obj.get("keys") or [])
    out = Console(highlight=False)
    out.print(f"wrote {obj.get('out_path')}: {keys} for {obj.get('n_samples', 0):,} samples")
    counts = obj.get("counts") or {}
    if counts:
        top = sorted(counts.items(), key=lambda kv: -kv[1])
        out.print("predicted: " + ", ".join(f"{name} {n:,}" for name, n in top))


def _shape(shape) -> str:
    if shape is None:
        return "—"
    if isinstance(shape, str):
        return shape
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _count(n) -> str:
    return "—" if n is None else f"{n:,}"


def model_summary(summary, as_json: bool = False, name: str = "") -> None:
    """The ``bpcli info`` table: a row per layer, then the totals."""
    rows = _get(summary, "rows", None) or []
    if as_json:
        for r in rows:
            print(_dumps(_plain(r)))
        totals = {k: v for k, v in _plain(summary).items() if k != "rows"}
        print(_dumps({"total": True, **totals}))
        return
    title = name or _get(summary, "name") or "Model"
    table = Table(title=f"{title}: input {_shape(_get(summary, 'input_shape'))} per sample",
                  title_justify="left")  # fmt: skip
    for col, justify in (("layer", "left"), ("type", "left"), ("output shape", "right"),
                         ("params", "right"), ("FLOPs/sample", "right")):  # fmt: skip
        table.add_column(col, justify=justify)
    for r in rows:
        depth = _get(r, "depth", 0) or 0
        table.add_row(
            "  " * depth + str(_get(r, "name")), str(_get(r, "type")),
            _shape(_get(r, "output_shape")), _count(_get(r, "params")),
            _count(_get(r, "flops")),
        )  # fmt: skip
    table.add_section()
    total_params, total_flops = _get(summary, "params"), _get(summary, "flops")
    table.add_row("total", "", "", _count(total_params), _count(total_flops), style="bold")
    out = Console(highlight=False)
    out.print(table)
    trainable = _get(summary, "trainable_params")
    if trainable is not None and trainable != total_params:
        out.print(f"trainable parameters {_count(trainable)}")
