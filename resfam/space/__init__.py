"""Design spaces as data: sample flops-matched populations, train them under one recipe, and
compare spaces by their error distributions (Radosavovic et al. 2019, NDS; 2020, RegNet).

    >>> import resfam.space as rs
    >>> samples = rs.sample(["vanilla", "resnet"], 100, seed=0)     # flops-matched designs
    >>> rs.write_samples("study", samples)                       # designs.yaml, designs.csv
    >>> rows = rs.train("study", data="digits", epochs=1)            # population.csv
    >>> c = rs.compare(rows, bins=10)                                # EDFs, KS, bootstrap

``resfam-space sample | train | compare`` is the same from the shell (docs/design_spaces.md).
The package is ``resfam.space``; none of its functions is called ``space``.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Space": ".definition", "list_spaces": ".definition",
    "Design": ".sampling", "load": ".sampling", "Sample": ".sampling", "sample": ".sampling",
    "read_population": ".population", "read_study": ".population", "train": ".population",
    "write_samples": ".population",
    "Comparison": ".analysis", "compare": ".analysis",
    "bootstrap_best": ".stats", "edf": ".stats", "ks_test": ".stats", "normalized_weights": ".stats",
    "random_search": ".stats",
    "plot_comparison": ".plot",
})

__all__ = ["Comparison", "Design", "Sample", "Space", "bootstrap_best", "compare", "edf", "ks_test",
           "list_spaces", "load", "normalized_weights", "plot_comparison", "random_search",
           "read_population", "read_study", "sample", "train", "write_samples"]
