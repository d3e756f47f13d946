"""The primitives every network is assembled from: one small module each, holding the
``nn.Module`` and the parameter schema (pydantic) that a spec key validates against.

- stems (:mod:`.stems`), block types (:mod:`.blocks`: basic, bottleneck, res2 and the one
  :class:`~.blocks.ResidualBlock` around them), shortcuts (:mod:`.shortcuts`), attention
  (:mod:`.attention`, :mod:`.selective_kernel`, :mod:`.split_attention`), merges
  (:mod:`.merges`), norm / activation placement (:mod:`.orders`);
- the building blocks they share: convs, activations and conv styles (:mod:`.layers`), norms
  (:mod:`.norms`), anti-aliased downsampling (:mod:`.antialias`).

Nothing here imports the spec, network, weights or use layers above it.
"""
