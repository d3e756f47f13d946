"""Block types. Importing this package registers every bundled one in :data:`BLOCKS`."""
from .base import BLOCKS, BlockParams, KeyProblem, Unit, register_block
from . import basic, bottleneck, inception, res2net  # noqa: F401  (registration)
from .residual import ResidualBlock

__all__ = ["BLOCKS", "BlockParams", "KeyProblem", "ResidualBlock", "Unit", "register_block"]
