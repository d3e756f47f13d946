"""Multi-scale feature description: timm's own ``FeatureInfo`` (per level the channels, the
reduction (stride) from the input, and the module whose output it is), so timm's feature
wrappers (``FeatureListNet``, ...) take resfam models as they take timm's. Level 0 is the
stride-2 stem output (before any max-pool), levels 1..N the stages."""
from __future__ import annotations

from timm.models._features import FeatureInfo as _TimmFeatureInfo


class FeatureInfo(_TimmFeatureInfo):
    """timm's ``FeatureInfo`` with resfam's spellings: ``levels`` (the per-level dicts),
    ``module_names`` and iteration over the levels."""

    @property
    def levels(self) -> list[dict]:
        return self.info

    def module_names(self, idx=None):
        return self.module_name(idx)

    def __iter__(self):
        return iter(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo(out_indices={self.out_indices}, levels={self.info})"
