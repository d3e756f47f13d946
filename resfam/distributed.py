"""The processes torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), checked before any work, and a rendezvous that gives up with a clear error.

Leftover variables in a shell (``RANK=1`` without ``WORLD_SIZE``) would otherwise make a single
process measure or train a slice of its work and exit 0; a ``WORLD_SIZE=2`` whose peer never
starts would wait for torch's default 30 minutes.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

from .errors import ResfamError, first_line

RENDEZVOUS_ENV = "RESFAM_RENDEZVOUS_TIMEOUT"  # seconds; torch's own default is 30 minutes
RENDEZVOUS_SECONDS = 300


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0


def _whole(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ResfamError(f"{name}={text!r} is not a whole number (torchrun sets it; unset it to "
                          "run one process)") from None


def from_env() -> Ranks:
    """The ranks torchrun set, checked: whole numbers, ``0 <= RANK < WORLD_SIZE``, and a
    rendezvous address for more than one process."""
    world = _whole("WORLD_SIZE", 1)
    rank = _whole("RANK", 0)
    local = _whole("LOCAL_RANK", 0)
    if world < 1:
        raise ResfamError(f"WORLD_SIZE={world}: the number of processes is at least 1")
    if not 0 <= rank < world or local < 0:
        raise ResfamError(f"RANK={rank} (LOCAL_RANK={local}) with WORLD_SIZE={world}: a rank is 0 "
                          f"to WORLD_SIZE - 1; leftover torchrun variables? unset RANK, "
                          "LOCAL_RANK and WORLD_SIZE to run one process, or start it with torchrun")
    if world > 1:
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:
            raise ResfamError(f"WORLD_SIZE={world} but {' and '.join(missing)} unset: start the "
                              "processes with torchrun, or unset WORLD_SIZE to run one")
    return Ranks(rank, world, local)


def rendezvous_seconds() -> float:
    text = os.environ.get(RENDEZVOUS_ENV)
    if text is None:
        return RENDEZVOUS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86400:
        raise ResfamError(f"{RENDEZVOUS_ENV}={text!r}: seconds between 0 and 86400")
    return seconds


def join(ranks: Ranks, backend: str) -> None:
    """``torch.distributed.init_process_group`` with a bounded rendezvous: a peer that never
    comes is a ResfamError after ``RESFAM_RENDEZVOUS_TIMEOUT`` seconds (default 300)."""
    import torch.distributed as dist

    seconds = rendezvous_seconds()
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=seconds))
    except (RuntimeError, TimeoutError, ValueError, OSError) as e:
        first = first_line(e)
        where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
        raise ResfamError(f"rank {ranks.rank} of {ranks.world}: no rendezvous with the other "
                          f"processes at {where} within {seconds:g} s ({first[:200]}); are they "
                          f"all started? ({RENDEZVOUS_ENV} sets the wait)") from None
