"""Side-by-side counts and measurements of resfam builds and other libraries' models (the
``resfam-compare`` tool)."""
from .analytic import AnalyticCounter
from .counting import Counts, FlopCounterModeCounter, FvcoreCounter, count_params
from .sweep import compare, make_counter, measure_one, measure_rows, select
from .targets import Target, select_targets

__all__ = ["AnalyticCounter", "Counts", "FlopCounterModeCounter", "FvcoreCounter", "Target",
           "compare", "count_params", "make_counter", "measure_one", "measure_rows", "select",
           "select_targets"]
