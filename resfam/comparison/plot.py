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


def _colours(rows, plt) -> dict:
    """One colour per family, the same in every panel."""
    cmap = plt.get_cmap("tab20")
    return {fam: cmap(i % 20) for i, fam in enumerate(sorted({r.get("family") or "?" for r in rows}))}


def _scatter(ax, rows, x, y, plt, colours: dict, logx: bool = True, logy: bool = False) -> None:
    """Points by family, then their labels moved apart (on the final, log scales)."""
    from matplotlib.ticker import NullFormatter

    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide within a decade
    if logy:
        ax.set_yscale("log")
    families = sorted({r.get("family") or "?" for r in rows})
    texts = []
    for fam in families:
        sub = [r for r in rows if (r.get("family") or "?") == fam]
        ax.scatter([r[x] for r in sub], [r[y] for r in sub], s=[marker_area(r.get("params")) for r in sub],
                   alpha=0.75, color=colours[fam], label=fam, edgecolors="black", linewidths=0.5)
        texts += [ax.text(r[x], r[y], r["model"], fontsize=6) for r in sub]
    _labels(ax, texts)
    legend = ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    for handle in legend.legend_handles:  # one marker size in the legend: colour is the key
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])
    ax.grid(True, which="both", alpha=0.3)


def paper_path(path: str) -> str:
    root, suffix = os.path.splitext(path)
    return f"{root}-paper{suffix}"


def plot(rows: list[dict], path: str, meta: dict, size=(11, 7), dpi=100) -> list[str]:
    """Write the figures; returns the files written."""
    plt = require_matplotlib()
    timed = [r for r in rows if r.get("latency_ms") and r.get("gmacs")]
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    colours = _colours(rows, plt)
    _scatter(ax, timed, "gmacs", "latency_ms", plt, colours, logy=True)
    ax.set_xlabel("GMACs per image (conv + linear)")
    ax.set_ylabel(f"latency per batch of {meta['batch_size']}, ms (median)")
    ax.set_title(f"torch {meta['torch']}, {meta['device']}, {meta['threads']} threads, "
                 f"{meta['dtype']}; marker area grows with sqrt(parameters)", fontsize=9)
    fig.tight_layout()
    replace_atomically(path, fig.savefig)
    plt.close(fig)
    written = [path]
    papers = [r for r in rows if r.get("paper_top1") is not None and r.get("gmacs")]
    datasets = sorted({r.get("paper_dataset") or "?" for r in papers})
    if datasets:
        fig, axes = plt.subplots(1, len(datasets), figsize=(size[0], size[1] * 0.8), dpi=dpi, squeeze=False)
        for ax, dataset in zip(axes[0], datasets):
            _scatter(ax, [r for r in papers if (r.get("paper_dataset") or "?") == dataset],
                     "gmacs", "paper_top1", plt, colours)
            ax.set_xlabel("GMACs per image (resfam's count at the native input)")
            ax.set_ylabel(f"top-1 % as the paper reports it ({dataset})")
            ax.set_title(f"{dataset}: the papers' accuracy (their protocols differ: see --paper)", fontsize=9)
        fig.tight_layout()
        replace_atomically(paper_path(path), fig.savefig)
        plt.close(fig)
        written.append(paper_path(path))
    return written
