"""Figures for the trainability studies (matplotlib, the ``plot`` extra)."""
from __future__ import annotations

from ..comparison.plot import log_ticks, require_matplotlib, save_figure

PROBE_PANELS = (("avg_sq_mean", "average channel squared mean"), ("avg_var", "average channel variance"),
                ("branch_var", "residual branch variance"))


def _models(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in rows))


CLIP = 1e-4  # a log axis shows down to this fraction of the lowest model's median value: a
# trend over decades stays (a plain net's fall without norms), isolated dips to ~0 do not
# stretch it (iResNet's end blocks: 1e-15)


def probe_title(meta: dict) -> str:
    """What the plots were measured under: norms as the specs have them or overridden, the batch."""
    kwargs = meta.get("build_kwargs") or {}
    norms = f"norm_layer={kwargs['norm_layer']}" if "norm_layer" in kwargs else "norms as each spec has them"
    extra = ", zero-init last" if "zero_init_last" in kwargs else ""
    return (f"signal propagation at initialisation: {norms}{extra}; a batch of {meta.get('batch_size')} "
            f"N(0, 1) images, seed {meta.get('seed')}, training mode")


def floor_of(blocks: list[dict], key: str) -> list[float]:
    """Each model's median positive ``key`` (the clip's reference)."""
    import statistics

    out = []
    for model in _models(blocks):
        values = [r[key] for r in blocks if r["model"] == model and r.get(key) is not None and r[key] > 0]
        if values:
            out.append(statistics.median(values))
    return out


def probe_figure(blocks: list[dict], grads: list[dict], meta: dict):
    """Brock et al. 2021's signal propagation plots (block index on x, log scale), and the
    gradient RMS per part: one line per model. The branch panel shows only nets that have a
    residual branch; a log axis stops at :data:`CLIP` of the lowest model's median (and says so)."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    parts = list(dict.fromkeys(r["part"] for r in grads if r["part"] not in ("head", "input")))
    parts += [p for p in ("head", "input") if any(r["part"] == p for r in grads)]  # one order for all
    for i, model in enumerate(_models(blocks)):
        rows = [r for r in blocks if r["model"] == model]
        for ax, (key, _) in zip(axes, PROBE_PANELS):
            points = [(r["block"], r[key]) for r in rows if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker=".", label=model, color=colors[i % len(colors)])
        g = [r for r in grads if r["model"] == model]
        axes[3].plot([parts.index(r["part"]) for r in g], [r["grad_rms"] for r in g], marker="o",
                     label=model, color=colors[i % len(colors)])
    for ax, (key, title) in zip(axes, PROBE_PANELS):
        ax.set(title=title, xlabel="residual block", yscale="log")
        ax.xaxis.get_major_locator().set_params(integer=True)
        values = [r[key] for r in blocks if r.get(key) is not None and r[key] > 0]
        if not values:
            ax.text(0.5, 0.5, "no residual branch\n(plain nets: no shortcut)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=10, color="0.4")
            continue
        floor = CLIP * min(floor_of(blocks, key))
        if min(values) < floor:
            ax.set_ylim(bottom=floor)
            ax.text(0.98, 0.02, f"clipped below {CLIP:g} x the lowest model's median", ha="right",
                    transform=ax.transAxes, fontsize=7, color="0.3")
    axes[3].set(title="gradient RMS per part (random labels)", yscale="log")
    axes[3].set_xticks(range(len(parts)), parts, rotation=45)
    fig.legend(*axes[3].get_legend_handles_labels(), fontsize=8, loc="center right")
    fig.suptitle(probe_title(meta), fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.91, 1))
    return fig


def plot_probe(blocks: list[dict], grads: list[dict], path: str, meta: dict | None = None) -> None:
    """Write :func:`probe_figure` to ``path``."""
    save_figure(probe_figure(blocks, grads, meta or {}), path)


def _mean_and_range(rows: list[dict], key: str):
    """Epochs, the mean over seeds of ``key`` at each, the seeds' min and max there, and whether
    any epoch has more than one seed."""
    xs = sorted({r["epoch"] for r in rows if r.get(key) is not None})
    per = [[r[key] for r in rows if r["epoch"] == v and r.get(key) is not None] for v in xs]
    return xs, [sum(v) / len(v) for v in per], [min(v) for v in per], [max(v) for v in per], \
        any(len(v) > 1 for v in per)


def plot_curves(epochs: list[dict], path: str, title: str = "", iterations: list[dict] = ()) -> None:
    """Write :func:`curves_figure` to ``path``."""
    save_figure(curves_figure(epochs, title, iterations), path)


def curves_figure(epochs: list[dict], title: str = "", iterations: list[dict] = ()):
    """He et al. 2016, Fig. 6 style: error % (log axis: nets that end below 10% stay apart) by
    epoch, training error bold and test error thin (the legend says which), one colour per
    model, the mean over seeds with the seeds' range shaded, every point marked (one epoch is
    one point, still visible). With ``iterations`` (``log_every``) the training error is drawn
    per logged iteration, the test error at the end of each epoch, on an epoch axis."""
    plt = require_matplotlib()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    shaded = False
    for i, model in enumerate(_models(epochs)):
        color = colors[i % len(colors)]
        rows = [r for r in epochs if r["model"] == model]
        its = [r for r in iterations if r["model"] == model]  # training error per iteration
        for source, key, width, marker in ((its or rows, "train_err", 2.4, None if len(its) > 40 else "o"),
                                           (rows, "test_err", 1.0, "o")):
            xs, mean, low, high, spread = _mean_and_range(source, key)
            ax.plot(xs, mean, color=color, linewidth=width, marker=marker,
                    markersize=5 if width > 2 else 3.5)
            if spread:
                ax.fill_between(xs, low, high, color=color, alpha=0.12)
                shaded = True
    ax.set_yscale("log")
    log_ticks(ax.yaxis)
    ax.set(xlabel="epoch" + (" (training error logged every few iterations)" if iterations else ""),
           ylabel="error, % (log scale)", title=title)
    if not iterations:
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3, which="major")
    models = [Line2D([], [], color=colors[i % len(colors)], lw=4, label=m) for i, m in enumerate(_models(epochs))]
    styles = [Line2D([], [], color="0.2", lw=2.4, marker="o", label="training error (running, train mode)"),
              Line2D([], [], color="0.2", lw=1.0, marker="o", markersize=3.5, label="test error (eval mode)")]
    if shaded:
        styles.append(plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.25, label="range over seeds"))
    ax.legend(handles=models + styles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig
