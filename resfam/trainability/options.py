"""Bounds on resfam-probe's and resfam-train's options, without torch: their ``--help`` and
argparse types read them before torch is imported."""
from __future__ import annotations

MIN_IMG_SIZE = 8  # a probe's smallest input side (resfam-probe's --img-size floor too)
PROBE_MAX_SEED = 2 ** 63 - 1  # torch.manual_seed's range
MAX_EPOCHS, MAX_SEEDS = 10_000, 1_000
TRAIN_MAX_SEED = 2 ** 32 - 1  # each epoch seeds torch with seed * 1,000,003 + epoch: it stays in range
