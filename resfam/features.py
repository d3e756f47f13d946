"""Multi-scale feature description, timm's ``FeatureInfo`` contract: per level the channels,
the reduction (stride) from the input, and the module whose output it is. Level 0 is the
stride-2 stem output (before any max-pool), levels 1..N the stages."""
from __future__ import annotations

from typing import Optional, Sequence, Union

Index = Optional[Union[int, Sequence[int]]]


class FeatureInfo:
    def __init__(self, levels: list[dict], out_indices: Sequence[int]):
        self.levels = levels
        self.out_indices = tuple(out_indices)

    def _get(self, key: str, idx: Index):
        if idx is None:
            return [self.levels[i][key] for i in self.out_indices]
        if isinstance(idx, (tuple, list)):
            return [self.levels[i][key] for i in idx]
        return self.levels[idx][key]

    def channels(self, idx: Index = None):
        return self._get("num_chs", idx)

    def reduction(self, idx: Index = None):
        return self._get("reduction", idx)

    def module_names(self, idx: Index = None):
        return self._get("module", idx)

    module_name = module_names  # timm's spelling

    def get_dicts(self) -> list[dict]:
        return [dict(self.levels[i]) for i in self.out_indices]

    def __getitem__(self, i: int) -> dict:
        return self.levels[i]

    def __len__(self) -> int:
        return len(self.levels)

    def __iter__(self):
        return iter(self.levels)

    def __repr__(self) -> str:
        return f"FeatureInfo(out_indices={self.out_indices}, levels={self.levels})"
