"""The network layer: the one network class and what it needs around it.

- :mod:`.model`: :class:`ResFamNet`, stem -> stages -> head assembled from a resolved spec;
- :mod:`.size`: a build's bytes, counted on the meta device before anything is allocated;
- :mod:`.features`: ``features_only`` feature metadata (timm's ``FeatureInfo``);
- :mod:`.preprocessing`: the input a build expects (``pretrained_cfg``, ``data_config``);
- :mod:`.inference`: ``optimize_for_inference`` (conv-BN folding, standardised weights).
- :mod:`.onednn`, :mod:`.elementwise`: what it fuses (convolutions on oneDNN; merges as one op),
  :mod:`.dataflow`: which traced values they may write over.

It imports the spec and primitive layers; never the weights or the uses above it.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {"ResFamNet": ".model"})  # preprocessing needs no torch

__all__ = ["ResFamNet"]
