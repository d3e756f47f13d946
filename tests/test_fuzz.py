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


# --- the oracle can fail: each kind of failure, made on purpose, is seen as that kind ----------

def test_the_oracle_sees_a_coercion_in_a_spec_and_in_build_arguments():
    import resfam
    from fuzz_cases import SilentAcceptance, _check_args, _check_no_coercion

    spec = resfam.get_spec("resnet18")  # what a builder that took True for 2 would have built
    with pytest.raises(SilentAcceptance, match=r"stages.stride.3: True became 2"):
        _check_no_coercion({"extends": "resnet18", "stages": {"stride": [1, 2, 2, True]}}, spec)
    resnext = resfam.get_spec("resnext50_32x4d")
    with pytest.raises(SilentAcceptance, match="block.groups: 32.0 became 32"):
        _check_no_coercion({"block": {"groups": 32.0}}, resnext)
    _check_no_coercion({"stages": {"stride": [1, 2, 2, 2]}, "block": {"groups": 32}}, resnext)
    model = resfam.build("resnet18")
    with pytest.raises(SilentAcceptance, match="output_stride=16.0"):
        _check_args({"output_stride": 16.0}, model)
    with pytest.raises(SilentAcceptance, match="num_classes=10 built 1000"):
        _check_args({"num_classes": 10}, model)


def test_the_oracle_sees_a_key_given_twice():
    import resfam
    from fuzz_cases import SilentAcceptance, _check_yaml_build

    spec = resfam.get_spec("resnet18")
    with pytest.raises(SilentAcceptance, match="keys given twice"):
        _check_yaml_build(b"extends: resnet18\nhead: {num_classes: 3, num_classes: 4}\n", spec)
    _check_yaml_build(b"extends: resnet18\nhead:\n  <<: {num_classes: 3}\n  num_classes: 4\n", spec)


def test_the_oracle_sees_a_tensor_that_did_not_load_and_a_half_load(tmp_path, monkeypatch):
    import torch

    import resfam
    from fuzz_cases import HalfLoaded, SilentAcceptance, _check_loaded, _interrupted_load

    path = str(tmp_path / "w.pth")
    state = resfam.build("resnet20").state_dict()
    torch.save(state, path)
    model = resfam.build("resnet20")
    report = resfam.load_pretrained(model, path)
    _check_loaded(model, report, path)
    with torch.no_grad():
        model.conv1.weight.add_(1)  # as if the load had skipped it
    with pytest.raises(SilentAcceptance, match="conv1.weight did not load"):
        _check_loaded(model, report, path)

    fresh = resfam.build("resnet20")
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    real = torch.nn.Module.load_state_dict

    calls = []

    def half_then_interrupt(model, sd, label, strict=True):  # a loader without the restore, once
        calls.append(label)
        if len(calls) > 1:
            return real_load_state(model, sd, label, strict)
        real(model, dict(list(sd.items())[: len(sd) // 2]), strict=False)
        raise KeyboardInterrupt

    from resfam.weights import checkpoint

    real_load_state = checkpoint.load_state
    monkeypatch.setattr(checkpoint, "load_state", half_then_interrupt)
    with pytest.raises(HalfLoaded):
        _interrupted_load(fresh, before, path, {"model": "resnet20", "strict": True,
                                                "interrupt_ms": 1000.0})


def test_the_oracle_sees_a_damaged_report(tmp_path, monkeypatch):
    from fuzz_cases import DamagedFile, _run_output

    def truncate_then_interrupt(path, text):  # a writer that is not atomic, killed half-way
        with open(path, "w") as f:
            f.write(text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr("resfam.comparison.cli.write_text_atomically", truncate_then_interrupt)
    with pytest.raises(DamagedFile, match="neither old nor complete"):
        _run_output({"models": ["resnet20", "plain20"], "suffix": ".csv", "old": "old\n",
                     "resume": False, "latency": False, "interrupt_ms": None}, str(tmp_path))
