"""``--plot``: two figures a reader can use.

1. GMACs against measured latency: marker area grows with the square root of the parameters
   (from a visible floor, so the CIFAR nets show), colour = family, the legend outside the axes, labels moved
   apart by adjustText where they would overlap (the 4-12 GMAC cluster).
2. Beside it (``<name>-paper.<ext>``): the papers' top-1 accuracy against resfam's GMACs, one
   panel per dataset (ImageNet and CIFAR figures are not comparable), where a paper gives one.

matplotlib and adjustText are an optional extra (``pip install 'resfam[plot]'``).
"""
from __future__ import annotations

import os

from ..errors import ResfamError
from ..files import replace_atomically

MIN_AREA = 18.0  # points^2: the smallest marker


def require_matplotlib():
    """pyplot on the Agg backend, or a ResfamError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ResfamError("--plot needs matplotlib: pip install 'resfam[plot]'") from None
    return plt


def marker_area(params: float) -> float:
    """Points^2: a floor that keeps the CIFAR nets visible, growing with the square root of the
    parameters so that the billion-parameter nets do not cover the rest."""
    return MIN_AREA + 25.0 * ((params or 0) / 1e6) ** 0.5


def _labels(ax, texts) -> None:
    try:
        from adjustText import adjust_text
    except ImportError:  # labels stay where they were put
        return
    ax.figure.canvas.draw()  # adjustText works in display coordinates: lay the axes out first
    adjust_text(texts, ax=ax, expand_axes=False, ensure_inside_axes=True, time_lim=20,
                arrowprops=dict(arrowstyle="-", lw=0.4, color="0.5"))


MARKERS = "osD^vP*Xh<>p"
MAX_LABELS = 40  # more points than this: only the Pareto front is labelled


def _styles(rows, plt) -> dict:
    """One (colour, marker) per family, the same in every panel: colours cycle through tab10's
    ten distinct hues and markers through :data:`MARKERS` out of step, so no two of the first
    sixty families look alike (tab20's light/dark pairs did)."""
    cmap = plt.get_cmap("tab10")
    families = sorted({r.get("family") or "?" for r in rows})
    return {fam: (cmap(i % 10), MARKERS[(i // 10 + i) % len(MARKERS)]) for i, fam in enumerate(families)}


def pareto(points: list[tuple[float, float]], maximise_y: bool, maximise_x: bool = False) -> list[int]:
    """Indices of the points no other point beats on both axes, by ascending x. Accuracy vs
    GMACs: least x, most y (the best top-1 for a budget). Latency vs GMACs: most x, least y (the
    most compute a millisecond buys: the nets that use a CPU best)."""
    sx, sy = (-1 if maximise_x else 1), (-1 if maximise_y else 1)
    order = sorted(range(len(points)), key=lambda i: (sx * points[i][0], sy * points[i][1]))
    front, best = [], None
    for i in order:
        y = sy * points[i][1]
        if best is None or y < best:
            front.append(i)
            best = y
    return sorted(front, key=lambda i: points[i][0])


def log_ticks(axis) -> None:
    """1-2-5 ticks with plain labels on a log axis (matplotlib's default labels only the decades:
    one label across 1.8-11 GMACs)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _scatter(ax, rows, x, y, plt, styles: dict, logx: bool = True, logy: bool = False,
             front: tuple[bool, bool] = (False, True), yerr: tuple[str, str] | None = None, label=None,
             legend: bool = True) -> None:
    """Points by family (colour and marker), error bars from ``yerr`` (the keys of the low and
    high ends), the Pareto front (``front``: maximise y, maximise x) as a dashed step line, then
    the labels moved apart; a legend when ``legend``."""
    if logx:
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
    if logy:
        ax.set_yscale("log")
        log_ticks(ax.yaxis)
    texts = []
    on_front = [rows[i] for i in pareto([(r[x], r[y]) for r in rows], *front)]
    named = rows if len(rows) <= MAX_LABELS else on_front  # the whole zoo: 161 labels are a blot
    labelled = {id(r) for r in named}
    for fam in sorted({r.get("family") or "?" for r in rows}):
        sub = [r for r in rows if (r.get("family") or "?") == fam]
        colour, marker = styles[fam]
        if yerr and all(r.get(yerr[0]) is not None for r in sub):
            ax.errorbar([r[x] for r in sub], [r[y] for r in sub], fmt="none", ecolor=colour, elinewidth=1,
                        yerr=[[r[y] - r[yerr[0]] for r in sub], [r[yerr[1]] - r[y] for r in sub]])
        ax.scatter([r[x] for r in sub], [r[y] for r in sub], s=[marker_area(r.get("params")) for r in sub],
                   alpha=0.8, color=colour, marker=marker, label=fam, edgecolors="black", linewidths=0.5)
        texts += [ax.text(r[x], r[y], label(r) if label else r["model"], fontsize=7.5)
                  for r in sub if id(r) in labelled]
    if len(named) < len(rows):
        ax.text(0.99, 0.01, f"{len(rows)} models; labelled: the {len(named)} on the Pareto front",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="0.3")
    if len(on_front) > 1:
        ax.step([r[x] for r in on_front], [r[y] for r in on_front], where="post" if front[0] else "pre",
                ls="--", lw=1.2, color="0.3", label="Pareto front", zorder=0)
    _labels(ax, texts)
    ax.grid(True, which="major", alpha=0.3)
    if not legend:
        return
    one_marker_size(ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0))


def one_marker_size(legend) -> None:
    """One marker size in a legend: colour and shape are the key, not the parameter count."""
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40])


def paper_path(path: str) -> str:
    root, suffix = os.path.splitext(path)
    return f"{root}-paper{suffix}"


def plot(rows: list[dict], path: str, meta: dict, size=(11, 7), dpi=100) -> list[str]:
    """Write the figures; returns the files written."""
    written = []
    for suffix, fig in figures(rows, meta, size, dpi):
        written.append(path if not suffix else paper_path(path))
        save_figure(fig, written[-1])
    return written


def save_figure(fig, path: str) -> None:
    """Write ``fig`` to ``path`` whole or not at all (:func:`resfam.files.replace_atomically`)
    and close it."""
    replace_atomically(path, fig.savefig)
    require_matplotlib().close(fig)


def figures(rows: list[dict], meta: dict, size=(11, 7), dpi=100) -> list[tuple[str, object]]:
    """(suffix, matplotlib figure) for each figure the rows support: '' GMACs vs latency (rows
    with both), '-paper' the papers' top-1 vs GMACs (rows with a paper's top-1)."""
    plt = require_matplotlib()
    out = []
    timed = [r for r in rows if r.get("latency_ms") and r.get("gmacs")]
    first = next((r["batch"] for r in timed if r.get("batch") is not None), None)
    timed = [r for r in timed if r.get("batch") in (None, first)]  # several batch sizes: the first
    if timed:
        out.append(("", _latency_figure(timed, rows, meta, plt, size, dpi)))
    papers = [dict(r, paper_x=r.get("paper_input_gmacs") or r["gmacs"])  # at the paper's side
              for r in rows if r.get("paper_top1") is not None and r.get("gmacs")]
    if papers:
        out.append(("-paper", _paper_figure(papers, rows, plt, size, dpi)))
    return out


def _latency_figure(timed, rows, meta, plt, size, dpi):
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    _scatter(ax, timed, "gmacs", "latency_ms", plt, _styles(rows, plt), logy=True,
             yerr=("latency_q1_ms", "latency_q3_ms"),
             front=(False, True))
    ax.set_xlabel("GMACs per image (conv + linear)")
    batch = timed[0].get("batch") or meta["batch_size"]
    ax.set_ylabel(f"latency per batch of {batch}, ms (median; bars: quartiles)")
    ax.set_title(f"torch {meta['torch']}, {meta['device']}, {meta['threads']} threads, "
                 f"{meta['dtype']}; marker area grows with sqrt(parameters); dashed: the Pareto front "
                 "(no net has more GMACs in less time)", fontsize=9)
    fig.tight_layout()
    return fig


def _paper_figure(papers, rows, plt, size, dpi):
    styles = _styles(rows, plt)
    datasets = sorted({r.get("paper_dataset") or "?" for r in papers})
    fig, axes = plt.subplots(1, len(datasets), figsize=(size[0], size[1] * 0.8), dpi=dpi, squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        _scatter(ax, [r for r in papers if (r.get("paper_dataset") or "?") == dataset],
                 "paper_x", "paper_top1", plt, styles, front=(True, False), legend=False,
                 label=lambda r: f"{r['model']} ({r.get('paper_protocol') or '?'})")
        ax.set_xlabel("GMACs per image (resfam's count at the side the paper counts at)")
        ax.set_ylabel(f"top-1 % as the paper reports it ({dataset})")
        ax.set_title(dataset, fontsize=10)
    fig.suptitle("top-1 as each paper measured it (protocol in brackets: 10-crop reads higher than "
                 "1-crop); dashed: the Pareto front", fontsize=10)
    handles = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    one_marker_size(fig.legend(handles.values(), handles.keys(), fontsize=8, loc="center right"))
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return fig
