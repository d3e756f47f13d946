"""Figures for the trainability studies (matplotlib, the ``plot`` extra)."""
from __future__ import annotations

from ..comparison.plot import require_matplotlib
from ..files import replace_atomically

PROBE_PANELS = (("avg_sq_mean", "average channel squared mean"), ("avg_var", "average channel variance"),
                ("branch_var", "residual branch variance"))


def _models(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


def plot_probe(blocks: list[dict], grads: list[dict], path: str) -> None:
    """Brock et al. 2021's signal propagation plots (block index on x, log scale), and the
    gradient norm per part: one line per model."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    for model in _models(blocks):
        rows = [r for r in blocks if r["model"] == model]
        for ax, (key, _) in zip(axes, PROBE_PANELS):
            ax.plot([r["block"] for r in rows], [r[key] for r in rows], marker=".", label=model)
        g = [r for r in grads if r["model"] == model]
        axes[3].plot([r["part"] for r in g], [r["grad_rms"] for r in g], marker="o", label=model)
    for ax, (_, title) in zip(axes, PROBE_PANELS):
        ax.set(title=title, xlabel="residual block", yscale="log")
    axes[3].set(title="gradient RMS per part (random labels)", yscale="log")
    axes[3].tick_params(axis="x", rotation=45)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)


def plot_curves(epochs: list[dict], path: str, title: str = "") -> None:
    """He et al. 2016, Fig. 6 style: error % per epoch, training error bold, test error thin, one
    colour per model; the mean over seeds with the seeds' range shaded."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(_models(epochs)):
        color = colors[i % len(colors)]
        rows = [r for r in epochs if r["model"] == model]
        xs = sorted({r["epoch"] for r in rows})
        for key, width, label in (("train_err", 2.6, model), ("test_err", 1.0, None)):
            per = [[r[key] for r in rows if r["epoch"] == e] for e in xs]
            mean = [sum(v) / len(v) for v in per]
            ax.plot(xs, mean, color=color, linewidth=width, label=label)
            if any(len(v) > 1 for v in per):
                ax.fill_between(xs, [min(v) for v in per], [max(v) for v in per], color=color, alpha=0.12)
    ax.set(xlabel="epoch", ylabel="error (%)", title=title or "training error (bold), test error (thin)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
