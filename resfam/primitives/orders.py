"""Where a block's norms and activations sit: the spec's ``order`` (a stage-level choice).

- ``post`` (ResNet v1, He et al. 2016, Fig. 2): conv-BN-ReLU ... conv-BN, add, ReLU.
- ``pre`` (ResNet v2, He et al. 2016b, Fig. 1(b)): BN-ReLU-conv ... , add; the projection
  shortcut reads the pre-activated input.
- ``iresnet`` (Duta et al. 2020, Fig. 2 "ResStage"): the first block of a stage is a
  *start* block (post-order without the final ReLU), the last an *end* block (pre-order with
  BN + ReLU after the add), the ones between *middle* blocks (pre-order); the first middle
  block has no leading BN because the start block ends in one; its ReLU acts on the block
  input, and the identity it adds is that activated input, ``F(relu x) + relu x`` (the official
  code's in-place ReLU; so does the end block of a two-block stage).
"""
from __future__ import annotations

from dataclasses import dataclass

ORDERS = ("post", "pre", "iresnet")


@dataclass(frozen=True)
class Placement:
    pre_norm: bool = False        # norm + act on the block input (bn0)
    pre_act: bool = False         # act alone on the input, shortcut included (iResNet's first middle block)
    last_norm: bool = False       # norm after the last unit of the branch
    merge_norm: bool = False      # norm after the merge (iResNet's end block)
    merge_act: bool = False       # act after the merge
    shortcut_preact: bool = False  # a projection (not the identity) reads the pre-activated input


POST = Placement(last_norm=True, merge_act=True)
PRE = Placement(pre_norm=True, shortcut_preact=True)
I_START = Placement(last_norm=True)


def placement(order: str, index: int, depth: int) -> Placement:
    """The placement for block ``index`` (0-based) of a stage of ``depth`` blocks."""
    if order == "post":
        return POST
    if order == "pre":
        return PRE
    if index == 0:
        return I_START
    first_middle = index == 1  # follows the start block, whose output is already normalised
    end = index == depth - 1
    return Placement(pre_norm=not first_middle, pre_act=first_middle, merge_norm=end, merge_act=end)
