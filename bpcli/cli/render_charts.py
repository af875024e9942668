"""Charts of a run's training and gradient health (``bpcli diagnose --png/--svg/--html``) and
of several runs side by side (``bpcli plot``), drawn with matplotlib (the ``bpcli[plot]``
extra) on its Agg backend: no display needed, and the files are self-contained (SVG text as
paths, HTML with the SVG inline: nothing fetched from the internet)."""

from __future__ import annotations

import io
import math
from pathlib import Path

from bpcli.errors import BpcliError

FORMATS = (".png", ".svg", ".html")
INSTALL = "charts need matplotlib: pip install 'bpcli[plot]'"


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise BpcliError(INSTALL, "matplotlib") from None
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "path"  # glyphs as paths: no font to load
    import matplotlib.pyplot as plt

    return plt


def _finite(xs, ys):
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    return [p[0] for p in pts], [p[1] for p in pts]


def run_figure(run, title: str = ""):
    """Four panels: loss (and accuracy) per epoch; gradient norm per layer over steps (log);
    update/weight ratio per layer (log); dead and saturated shares per activation layer."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    fig.suptitle(title or Path(run.run_dir).name)
    ax = axes[0][0]
    ep = [e["epoch"] for e in run.epochs]
    for key, style in (("train_loss", "-"), ("val_loss", "--")):
        xs, ys = _finite(ep, [e.get(key) for e in run.epochs])
        if ys:
            ax.plot(xs, ys, style, marker="o", ms=3, label=key)
    ax.set(title="Loss per epoch", xlabel="epoch", ylabel="loss")
    metric = next((k for k in ("val_accuracy", "train_accuracy")
                   if any(k in e for e in run.epochs)), None)  # fmt: skip
    if metric:
        twin = ax.twinx()
        xs, ys = _finite(ep, [e.get(metric) for e in run.epochs])
        twin.plot(xs, ys, ":", color="tab:green", marker="s", ms=3, label=metric)
        twin.set_ylabel(metric)
        lines = ax.lines + twin.lines  # one legend, clear of the curves (they hug the edges)
        ax.legend(lines, [ln.get_label() for ln in lines], loc="center right")
    elif ax.lines:
        ax.legend(loc="center right")
    steps = [r.step for r in run.reports]
    weights = {p.name for r in run.reports for p in r.params if len(p.shape) >= 2}
    for ax, key, what in (
        (axes[0][1], "grad_norm", "Gradient norm per layer"),
        (axes[1][0], "update_ratio", "Update / weight ratio per layer"),
    ):
        for name, vals in run.series(key).items():
            if name not in weights:
                continue
            xs, ys = _finite(steps, vals)
            pts = [(x, y) for x, y in zip(xs, ys) if y > 0]
            if pts:
                ax.plot(*zip(*pts), marker=".", label=run.label(name))
        ax.set_yscale("log")
        ax.set(title=what + " (log)", xlabel="step")
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
    ax = axes[1][1]
    acts: dict[str, list] = {}
    for r in run.reports:
        for a in r.activations:
            share = a.dead if a.dead is not None else a.saturated
            what = "dead" if a.dead is not None else "saturated"
            acts.setdefault(f"{run.label(a.name)} {what}", []).append((r.step, share))
    for name, pts in acts.items():
        xs, ys = _finite(*zip(*pts))
        ax.plot(xs, [100 * y for y in ys], marker=".", label=name)
    ax.set(title="Dead / saturated share per activation layer", xlabel="step", ylabel="%",
           ylim=(-2, 102))  # fmt: skip
    if ax.lines:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, "no ReLU, tanh or sigmoid layers observed", ha="center",
                transform=ax.transAxes)  # fmt: skip
    return fig


def compare_figure(runs: list[tuple[str, list[dict]]], metric: str):
    """``metric`` per epoch of each (name, epoch records) run on one axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5.5), constrained_layout=True)
    for name, epochs in runs:
        xs, ys = _finite([e["epoch"] for e in epochs], [e.get(metric) for e in epochs])
        ax.plot(xs, ys, marker="o", ms=3, label=name)
    ax.set(title=f"{metric} per epoch", xlabel="epoch", ylabel=metric)
    if metric.endswith("loss") and all(y > 0 for ln in ax.lines for y in ln.get_ydata()):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return fig


def save(fig, path: str) -> None:
    """PNG, SVG or a self-contained HTML page (the SVG inline), by the file's extension."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise BpcliError(f"unknown chart format {ext or '(none)'!r}: use "
                         f"{', '.join(FORMATS)}", str(path))  # fmt: skip
    try:
        if ext == ".html":
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            svg = buf.getvalue()
            svg = svg[svg.index("<svg") :]
            p.write_text(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>"
                         f"{p.stem}</title></head><body>\n{svg}\n</body></html>\n",
                         encoding="utf-8")  # fmt: skip
        else:
            fig.savefig(p, format=ext[1:], dpi=110)
    except OSError as e:
        raise BpcliError(f"cannot write the chart ({e.strerror or e})", str(path)) from None
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
