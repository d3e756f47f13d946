"""resfam.comparison.timing's alternating timer, on a fake clock: the order it runs two models in,
which runs it pairs, and that a slow spell of the machine cancels in a round's ratio."""
import gc

import pytest
import torch
from torch import nn

from resfam.comparison import timing


class Clock:
    """perf_counter for the timer; each model call advances it by the model's cost x the
    machine's slowness, which grows every two calls (1x, 1.5x, 2x, ...: one round each)."""

    def __init__(self):
        self.now = 0.0
        self.calls = 0

    def __call__(self):
        return self.now


class Costly(nn.Module):
    def __init__(self, name, ms, clock, log):
        super().__init__()
        self.name, self.ms, self.clock, self.log = name, ms, clock, log

    def forward(self, x):
        self.log.append(self.name)
        self.clock.now += self.ms * (1.0 + 0.5 * (self.clock.calls // 2)) / 1e3
        self.clock.calls += 1
        return x


@pytest.fixture
def models(monkeypatch):
    clock, log = Clock(), []
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    return Costly("a", 30.0, clock, log), Costly("b", 20.0, clock, log), log


def test_abba_order_rounds_paired_and_a_slow_spell_cancels(models):
    a, b, log = models
    ta, tb = timing.alternate_latency(a, b, torch.zeros(1), warmup=1, runs=4)
    assert log == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert ta.runs == tb.runs == len(ta.samples) == len(tb.samples) == 4
    # the machine got slower every round; each round's ratio still says a costs 1.5x b
    assert timing.round_ratios(ta, tb) == pytest.approx([1.5, 1.5, 1.5, 1.5])
    assert ta.samples == pytest.approx((45.0, 60.0, 75.0, 90.0))  # 30 ms x 1.5, 2, 2.5, 3
    assert ta.min_ms == min(ta.samples) and ta.median_ms > ta.min_ms


def test_garbage_collector_paused_while_timing_and_restored(models):
    a, b, _ = models
    seen = []
    b.register_forward_hook(lambda *_: seen.append(gc.isenabled()))
    assert gc.isenabled()
    timing.alternate_latency(a, b, torch.zeros(1), warmup=1, runs=2)
    assert seen == [True, False, False] and gc.isenabled()  # warm-up with it, timed runs without
    gc.disable()
    try:
        timing.alternate_latency(a, b, torch.zeros(1), warmup=0, runs=1)
        assert not gc.isenabled()  # a caller's choice is left as it was
    finally:
        gc.enable()
    seen.clear()  # one model timed alone (resfam-compare --latency): the same
    timing.time_fn(lambda: b(torch.zeros(1)), torch.device("cpu"), warmup=1, runs=2)
    assert seen == [True, False, False] and gc.isenabled()
