"""Random points of a design space over resfam's primitives, for sweeps the analytic counter
counts in seconds (Radosavovic et al. 2019, "On Network Design Spaces for Visual Recognition",
compare design spaces by sampling models from them; RegNet, 2020, does the same).

The space: 3 or 4 stages of 1-8 blocks, stage widths doubling from 32, 64 or 96 (x4 for
bottleneck-style blocks), block type basic / bottleneck (cardinality 1, 8 or 32) / res2 (scale 2-8,
split width 14 or 26), the ResNet-v1 or ResNet-C stem, the conv1x1 or ResNet-D shortcut, and no
attention, SE or ECA. Every sample is a valid spec.
"""
from __future__ import annotations

import random


def design(rng: random.Random, i: int = 0) -> dict:
    """One spec (a variant mapping, as a YAML file's ``variants:`` holds it)."""
    kind = rng.choice(["basic", "bottleneck", "res2"])
    n = rng.choice([3, 4])
    base = rng.choice([32, 64, 96])
    widths = [base * (1 if kind == "basic" else 4) * 2 ** s for s in range(n)]
    block: dict = {"type": kind}
    if kind == "bottleneck":
        groups = rng.choice([1, 8, 32])
        block.update(groups=groups, base_width=64 if groups == 1 else rng.choice([4, 8]))
    elif kind == "res2":
        block.update(scale=rng.choice([2, 4, 6, 8]), base_width=rng.choice([14, 26]))
    return {"name": f"d{i:04d}", "family": "design", "description": f"design {i}",
            "stem": {"type": rng.choice(["conv7_maxpool", "deep_maxpool"]), "width": 64},
            "stages": {"depth": [rng.randint(1, 8) for _ in range(n)], "width": widths,
                       "stride": [1] + [2] * (n - 1)},
            "block": block,
            "shortcut": {"type": rng.choice(["conv1x1", "avgpool_conv1x1"])},
            "attn": rng.choice([{"type": "none"}, {"type": "se"}, {"type": "eca"}])}


def sample(n: int, seed: int = 0) -> dict[str, dict]:
    """``n`` designs named ``d0000`` ...: ``yaml.safe_dump({"variants": sample(1000)})`` is a
    spec file that ``resfam-compare designs.yaml`` counts whole; any number of them count from
    Python as mappings, ``resfam.compare(list(sample(5000).values()), flops=True)``, or from a
    folder of files (a file holds at most 1 MiB, about 2,700 designs)."""
    rng = random.Random(seed)
    return {f"d{i:04d}": design(rng, i) for i in range(n)}
