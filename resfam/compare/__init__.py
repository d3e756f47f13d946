"""Side-by-side counts and measurements of resfam builds (the ``resfam-compare`` tool)."""
from .counting import Counts, FlopCounterModeCounter, FvcoreCounter, count_params
from .sweep import compare, measure_one, select

__all__ = ["Counts", "FlopCounterModeCounter", "FvcoreCounter", "compare", "count_params",
           "measure_one", "select"]
