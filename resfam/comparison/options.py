"""The options a sweep takes and their bounds, without torch: ``resfam-compare --help`` and
the CLIs' argparse types read them before any model library is imported."""
from __future__ import annotations

DTYPE_NAMES = ("float32", "float16", "bfloat16")
COUNTERS = ("analytic", "fvcore", "torch")
# the smallest value each numeric option takes (the CLI's argparse types read the same table)
OPTION_MINIMA = {"batch_size": 1, "runs": 1, "warmup": 0, "img_size": 1}
# bounds on the work one option can ask for (10,000 timed runs of a 0.1 s model: 17 minutes)
OPTION_MAXIMA = {"batch_size": 65_536, "runs": 10_000, "warmup": 10_000, "img_size": 16_384}
# --img-size's named choices: every ImageNet-scale net at COMMON_SIDE (the side the papers'
# complexity tables use: like with like), or each at its own native side (timm's pretrained
# configs: 160-480); nets made for small images (CIFAR 32, MNIST 28) keep their side under 'common'
IMG_SIZES = ("common", "native")
COMMON_SIDE, SMALL_INPUT = 224, 64


def input_side(native: int, img_size) -> int:
    """The side a net is measured at: ``img_size`` a whole number, 'native', or 'common' / None
    (the default: :data:`COMMON_SIDE`, or the native side of a net made for small images)."""
    if img_size == "native":
        return native
    if img_size in (None, "common"):
        return native if native < SMALL_INPUT else COMMON_SIDE
    return img_size


def describe_input(img_size) -> str:
    """The header's words for ``img_size``."""
    if img_size == "native":
        return "native (each net's own side: px column)"
    if img_size in (None, "common"):
        return f"{COMMON_SIDE}x{COMMON_SIDE} (nets for small images at their own: px column)"
    return f"{img_size}x{img_size}"


def batch_sizes(batch_size) -> list[int]:
    """``batch_size`` as a list: one size, or several (``--batch-size 1,8,32``)."""
    return list(batch_size) if isinstance(batch_size, (list, tuple)) else [batch_size]


MAX_THREADS, MAX_WORKERS = 1024, 256
FLAGS = ("params", "flops", "acts", "latency", "throughput", "memory", "train", "channels_last")
