"""Property-based fuzzing (hypothesis): mutated specs, YAML files, build arguments, checkpoints
and CLI flags give a working build or a resfam error, never another exception, never a hang,
and a failed checkpoint load changes nothing (tests/fuzz_cases.py makes and runs the cases).

The example budget is small for CI (profile ``resfam-ci``, registered in conftest.py); a long
local run: ``python -m pytest tests/test_fuzz.py --hypothesis-profile=resfam-long`` (and benchmarks/fuzz.py runs
thousands of cases in worker processes with memory and time limits).
"""
import random
import signal

import pytest
from hypothesis import given, strategies as st

from fuzz_cases import KINDS, make_case, run_case

CASE_SECONDS = 120  # a hang guard, generous for a loaded machine; typical cases take milliseconds


def _alarm(*_):
    raise TimeoutError(f"a fuzz case ran longer than {CASE_SECONDS} s")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_fuzzed_input_gives_a_build_or_a_resfam_error(kind, seed):
    case = make_case(kind, random.Random(seed))
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        outcome = run_case(kind, case)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert outcome in ("built", "resfam error")
