"""``--plot``: GMACs against measured latency, marker area = parameters, colour = family, with the
Pareto front (no other build does more multiply-accumulates in less time) joined by a line.
matplotlib is an optional extra (``pip install 'resfam[plot]'``)."""
from __future__ import annotations

from ..errors import ResfamError


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows that no other row beats on both lower latency and more GMACs, by latency."""
    pts = sorted((r for r in rows if r.get("latency_ms") and r.get("gmacs")), key=lambda r: r["latency_ms"])
    front, best = [], -1.0
    for r in pts:
        if r["gmacs"] > best:
            front.append(r)
            best = r["gmacs"]
    return front


def require_matplotlib():
    """pyplot on the Agg backend, or a ResfamError saying how to install it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ResfamError("--plot needs matplotlib: pip install 'resfam[plot]'") from None
    return plt


def plot(rows: list[dict], path: str, meta: dict, size=(10, 7), dpi=100) -> None:
    plt = require_matplotlib()
    rows = [r for r in rows if r.get("latency_ms") and r.get("gmacs")]
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    families = sorted({r["family"] for r in rows})
    cmap = plt.get_cmap("tab10")
    for i, fam in enumerate(families):
        sub = [r for r in rows if r["family"] == fam]
        ax.scatter([r["gmacs"] for r in sub], [r["latency_ms"] for r in sub],
                   s=[max(r.get("params", 1e6) / 1e6, 0.2) * 6 for r in sub], alpha=0.7,
                   color=cmap(i % 10), label=fam, edgecolors="black", linewidths=0.5)
        for r in sub:
            ax.annotate(r["model"], (r["gmacs"], r["latency_ms"]), fontsize=6, alpha=0.8,
                        xytext=(3, 3), textcoords="offset points")
    front = pareto_front(rows)
    if front:
        ax.plot([r["gmacs"] for r in front], [r["latency_ms"] for r in front], "k--", lw=1,
                label="Pareto front (most MACs per time)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("GMACs per image (conv + linear)")
    ax.set_ylabel(f"latency per batch of {meta['batch_size']}, ms (median)")
    ax.set_title(f"resfam zoo: torch {meta['torch']}, {meta['device']}, {meta['threads']} threads, "
                 f"{meta['dtype']}; marker area = params", fontsize=9)
    legend = ax.legend(fontsize=7, loc="upper left")
    for handle in legend.legend_handles:  # one marker size in the legend: colour is the key
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([30])
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
