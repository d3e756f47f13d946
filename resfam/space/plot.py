"""The figure of a design-space comparison (NDS Fig. 3, 5 and 6; RegNet Fig. 5), four panels:

1. the error EDFs, normalized (solid) and plain (thin, dashed), one colour per space;
2. error against complexity, one point per model;
3. the random-search curve: expected minimum error of k models (log2 k);
4. one drawn key against error, with RegNet's bootstrap 95% interval of its best value shaded.
"""
from __future__ import annotations

from typing import Optional

from ..comparison.plot import require_matplotlib, save_figure
from . import stats

UNITS = {"gmacs": "GMACs", "params": "parameters (M)", "acts": "activations (M)"}


def plot_comparison(comparison, rows: list[dict], path: str, key: Optional[str] = None, title: str = "") -> None:
    """Write the figure for ``comparison`` (:func:`resfam.space.analysis.compare`) of ``rows``."""
    plt = require_matplotlib()
    meta = comparison.meta
    metric, cx = meta["metric"], meta["complexity"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), dpi=100)
    colours = plt.get_cmap("tab10")
    for i, (space, curve) in enumerate(comparison.curves.items()):
        colour = colours(i % 10)
        xs, fs = stats.edf(curve["errors"])
        axes[0, 0].step([xs[0], *xs], [0.0, *fs], where="post", color=colour, lw=0.9, ls="--", alpha=0.7)
        if curve["weights"] is not None:
            xs, fs = stats.edf(curve["errors"], curve["weights"])
            axes[0, 0].step([xs[0], *xs], [0.0, *fs], where="post", color=colour, lw=2.0,
                            label=f"{space} (n={len(curve['errors'])})")
        else:
            axes[0, 0].lines[-1].set_label(f"{space} (n={len(curve['errors'])})")
        axes[0, 1].scatter(curve["complexity"], curve["errors"], s=14, color=colour, alpha=0.6,
                           label=space, edgecolors="none")
        ks = sorted(curve["search"])
        axes[1, 0].plot(ks, [curve["search"][k] for k in ks], "o-", color=colour, ms=4, label=space)
        if key:
            pts = [(r[key], r[metric]) for r in rows if r.get("space") == space
                   and isinstance(r.get(key), (int, float)) and isinstance(r.get(metric), (int, float))]
            if pts:
                axes[1, 1].scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color=colour,
                                   alpha=0.6, edgecolors="none", label=space)
            b = next((k for k in comparison.keys if k["space"] == space and k["key"] == key), None)
            if b and b["low"] is not None:
                axes[1, 1].axvspan(b["low"], b["high"], color=colour, alpha=0.12)
                axes[1, 1].axvline(b["mode"], color=colour, lw=1.0, ls=":")
    err = f"{metric.replace('_', ' ')} (%)"
    normal = f"normalized over {meta['bins']} {UNITS[cx]} bins" if meta["bins"] else "plain"
    axes[0, 0].set(xlabel=err, ylabel="cumulative fraction of models",
                   title=f"error EDFs: solid {normal}, dashed plain")
    axes[0, 1].set(xlabel=UNITS[cx], ylabel=err, title="error against complexity")
    axes[1, 0].set(xlabel="models drawn, k", ylabel=f"expected min {err}", title="random search (NDS Fig. 6)")
    axes[1, 0].set_xscale("log", base=2)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes[1, 0].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0, 1].xaxis.set_major_locator(MaxNLocator(6))
    if key:
        axes[1, 1].set(xlabel=key, ylabel=err, title=f"{key}: shaded, bootstrap 95% interval of the best")
    else:
        axes[1, 1].set_axis_off()
    for ax in axes.flat:
        if ax.axison:
            ax.grid(True, alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
