"""Side-by-side counts and measurements of resfam builds and other libraries' models (the
``resfam-compare`` tool)."""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {  # resfam-compare --help loads none of them
    "AnalyticCounter": ".analytic",
    "Counts": ".counting", "FlopCounterModeCounter": ".counting", "FvcoreCounter": ".counting",
    "count_params": ".counting",
    "compare": ".sweep", "make_counter": ".sweep", "measure_one": ".sweep", "measure_rows": ".sweep",
    "select": ".sweep",
    "Target": ".targets", "select_targets": ".targets"})

__all__ = ["AnalyticCounter", "Counts", "FlopCounterModeCounter", "FvcoreCounter", "Target",
           "compare", "count_params", "make_counter", "measure_one", "measure_rows", "select",
           "select_targets"]
