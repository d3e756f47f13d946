"""RegNet's quantised linear widths (Radosavovic et al. 2020, "Designing Network Design Spaces",
Sec. 3.3, Eq. (2)-(3)) and pycls's width / group compatibility: one implementation, used by the
design spaces (``resfam.space``'s ``regnet`` and ``compatible`` rules) and by specs.

- Eq. (2): block ``j``'s width is ``u_j = w0 + wa * j`` for ``0 <= j < d``.
- Eq. (3): ``s_j = round(log(u_j / w0) / log(wm))``, ``w_j = w0 * wm ** s_j``, each rounded to a
  multiple of ``quantum`` (8); consecutive blocks of equal width form a stage.
- Compatibility (pycls ``adjust_block_compatibility``, the paper's Sec. 3.1 note that the group
  width must divide the bottleneck width): the inner width ``w / b`` is rounded to a multiple of
  the group width ``g`` (``g`` capped at the inner width) and ``w`` follows it.
"""
from __future__ import annotations

import math


MAX_DEPTH = 10_000  # blocks: a bound on the work, far above any network resfam builds (max_blocks)


def regnet_widths(w0: float, wa: float, wm: float, depth: int, quantum: int = 8) -> list[int]:
    """The width of each of the ``depth`` blocks (Eq. 2-3). ValueError names a bad parameter:
    ``w0 > 0``, ``wa >= 0``, ``wm > 1``, ``1 <= depth <= MAX_DEPTH``, ``quantum >= 1``."""
    for name, value, ok in (("w0", w0, w0 > 0), ("wa", wa, wa >= 0), ("wm", wm, wm > 1),
                            ("depth", depth, isinstance(depth, int) and 1 <= depth <= MAX_DEPTH),
                            ("quantum", quantum, isinstance(quantum, int) and quantum >= 1)):
        if not ok:
            raise ValueError(f"{name} = {value!r} is out of range (w0 > 0, wa >= 0, wm > 1, "
                             f"depth a whole number from 1 to {MAX_DEPTH:,}, quantum >= 1)")
    widths = []
    for j in range(depth):
        u = w0 + wa * j
        s = round(math.log(u / w0) / math.log(wm))
        widths.append(max(quantum, int(round(w0 * wm ** s / quantum) * quantum)))
    return widths


def regnet_stages(w0: float, wa: float, wm: float, depth: int, quantum: int = 8) -> tuple[list[int], list[int]]:
    """(stage depths, stage widths): runs of equal block widths (Eq. 3's stages)."""
    depths, widths = [], []
    for w in regnet_widths(w0, wa, wm, depth, quantum):
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            depths.append(1)
            widths.append(w)
    return depths, widths


def compatible_widths(widths: list[int], expansions: list[int], group_widths: list[int],
                      min_ratio: float = 0.0) -> tuple[list[int], list[int]]:
    """(stage widths, group widths) made compatible: each inner width ``w / expansion`` becomes a
    multiple of its group width, the group width capped at the inner width (pycls; resfam's
    ``expansion`` is pycls's ``1 / bottleneck multiplier``). The rounding is to the nearest
    multiple (half to even), or with ``min_ratio`` torchvision's: half up, and one step more
    where that would lose more than ``1 - min_ratio`` of the width."""
    out_w, out_g = [], []
    for w, e, g in zip(widths, expansions, group_widths):
        inner = max(1, int(w / e))  # a width below its expansion: one channel, not a zero division
        g = min(g, inner)
        if min_ratio:
            q = max(g, int(inner + g / 2) // g * g)
            q += g if q < min_ratio * inner else 0
        else:
            q = int(round(inner / g) * g)
        out_w.append(int(q * e))
        out_g.append(g)
    return out_w, out_g
