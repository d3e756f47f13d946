"""Hostile and careless input (issue 10): every example is one resfam error, raised before anything
is allocated, in well under a second; nothing hangs and nothing is half-loaded."""
import math
import os
import re
import signal
import textwrap
from contextlib import contextmanager

import pytest
import torch
import torchvision

import resfam
from resfam.spec.build_args import DEFAULT_MAX_BLOCKS
from resfam.comparison import cli
from resfam.network.model import ResFamNet
from resfam.network.size import part_bytes


HANG_GUARD = 120  # seconds: these cases take milliseconds; the guard only stops a hang


@contextmanager
def within(seconds):
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def alarm(*_):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def no_allocation(monkeypatch):
    """Assembling on the meta device (the size count) is allowed; with real storage it is not."""
    real = ResFamNet._assemble

    def refuse(self, *args, **kwargs):
        if torch.empty(0).device.type != "meta":
            raise AssertionError("a network was assembled for bad input")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ResFamNet, "_assemble", refuse)


def write(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- hangs -----------------------------------------------------------------------------------

def test_yaml_alias_bomb_is_refused_quickly(tmp_path):
    lines = ["name: bomb", "family: x", "a0: &a0 [0, 0, 0, 0, 0, 0, 0, 0, 0]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
              f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    lines += ["stem: {type: cifar, width: *a8}"]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    assert path.stat().st_size < 1000
    with within(HANG_GUARD), \
            pytest.raises(resfam.SpecError, match="expands to more than 100000 values") as e:
        resfam.build(str(path))
    assert len(str(e.value)) < 300


def test_alias_bomb_in_a_typed_field_of_a_mapping_has_a_short_message():
    bomb = [0] * 9
    for _ in range(7):
        bomb = [bomb] * 9  # 9**8 values when walked, one list in memory
    with within(HANG_GUARD), pytest.raises(resfam.SpecError) as e:
        resfam.get_spec({"extends": "resnet18", "name": "x", "stem": {"width": bomb}})
    assert len(str(e.value)) < 300


def test_long_and_odd_names_have_short_messages():
    with within(HANG_GUARD), pytest.raises(resfam.UnknownModelError) as e:
        resfam.build("resnet" * 100_000)
    assert len(str(e.value)) < 200


def test_self_referencing_checkpoint(tmp_path):
    state = {}
    state["state_dict"] = state
    torch.save(state, tmp_path / "loop.pth")
    with within(HANG_GUARD), pytest.raises(resfam.CheckpointError, match="contains itself"):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "loop.pth")


def test_devices_and_fifos_are_not_read(tmp_path):
    with within(HANG_GUARD), pytest.raises(resfam.SpecError, match="not a regular file"):
        resfam.build("/dev/zero")
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    with within(HANG_GUARD), pytest.raises(resfam.SpecError, match="not a regular file"):
        resfam.build(str(fifo))
    with within(HANG_GUARD), pytest.raises(resfam.CheckpointError, match="not a regular file"):
        resfam.load_pretrained(resfam.build("resnet18"), fifo)
    with pytest.raises(resfam.SpecError, match="is a directory"):
        resfam.build(str(tmp_path) + "/")


def test_huge_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "#" * (2 << 20))
    with pytest.raises(resfam.SpecError, match="larger than"):
        resfam.build(str(path))


# --- half-done work --------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["sparse", "meta", "complex", "int"])
def test_unfit_tensor_leaves_the_model_untouched(tmp_path, bad):
    ref = torchvision.models.resnet18()
    state = ref.state_dict()
    key = "layer4.1.conv2.weight"  # late in the order: 20+ tensors would have been copied first
    state[key] = {"sparse": lambda t: t.to_sparse(), "meta": lambda t: torch.empty_like(t, device="meta"),
                  "complex": lambda t: t.to(torch.complex64), "int": lambda t: t.long()}[bad](state[key])
    torch.save(state, tmp_path / "bad.pth")
    model = resfam.build("resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(resfam.CheckpointError, match=key.replace(".", r"\.")):
        resfam.load_pretrained(model, tmp_path / "bad.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_failure_while_copying_restores_every_tensor(tmp_path, monkeypatch):
    ref = torchvision.models.resnet18()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    model = resfam.build("resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    real = torch.nn.Module.load_state_dict

    def copy_half_then_fail(self, state, strict=True):
        keys = list(state)[: len(state) // 2]
        real(self, {k: state[k] for k in keys}, strict=False)
        raise RuntimeError("disk went away")

    monkeypatch.setattr(torch.nn.Module, "load_state_dict", copy_half_then_fail)
    with pytest.raises(resfam.CheckpointError, match="disk went away.*model is unchanged"):
        resfam.load_pretrained(model, tmp_path / "r18.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# --- size limits -----------------------------------------------------------------------------

SIZE_CASES = {
    "depth 10**6": ({"stages": {"depth": [10 ** 6, 9, 9]}}, {}, "max_blocks", "stages.depth[0]=1000000"),
    "width 10**7": ({"stages": {"width": [16, 32, 10 ** 7]}}, {}, "max_param_bytes", "layer3 holds"),
    "width 10**9": ({"stages": {"width": [16, 32, 10 ** 9]}}, {}, "max_param_bytes", "2**63"),
    "width past int64": ({"stages": {"width": [16, 32, 10 ** 30]}}, {}, "max_param_bytes", "2**63"),
    "num_classes 10**9": ({}, {"num_classes": 10 ** 9}, "max_param_bytes", "num_classes=1000000000"),
    "in_chans 10**8": ({}, {"in_chans": 10 ** 8}, "max_param_bytes", "conv1 holds 100% of it (stem.width=16, in_chans=100000000)"),
}


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
def test_too_large_is_refused_before_allocation(no_allocation, case):
    overrides, kwargs, key, fragment = SIZE_CASES[case]
    spec = {"extends": "resnet20", "name": "big", **overrides}
    with within(HANG_GUARD), pytest.raises(resfam.BuildArgumentError) as e:
        resfam.build(spec, **kwargs)
    assert e.value.key == key and e.value.variant == "big" and fragment in str(e.value), str(e.value)
    if "2**63" not in fragment:  # past 64-bit sizes there is no limit to lift
        assert "None" in str(e.value)  # says how to lift the limit


def test_base_width_10_to_the_7_is_refused_before_allocation(no_allocation):
    with within(HANG_GUARD), pytest.raises(resfam.BuildArgumentError, match="max_param_bytes"):
        resfam.build({"extends": "resnext50_32x4d", "name": "x", "block": {"base_width": 10 ** 7}})


def test_the_limits_can_be_raised():
    spec = {"extends": "resnet20", "name": "deep", "stages": {"depth": [700, 700, 700]}}
    with pytest.raises(resfam.BuildArgumentError, match="2100 residual blocks"):
        resfam.build(spec)
    assert DEFAULT_MAX_BLOCKS == 2000
    with pytest.raises(resfam.BuildArgumentError, match="max_param_bytes=1000000"):
        resfam.build("resnet20", max_param_bytes=10 ** 6)
    assert sum(p.numel() for p in resfam.build("resnet20", max_param_bytes=None).parameters()) == 269722
    model = resfam.build({"extends": "resnet20", "name": "d", "stages": {"depth": [3, 3, 700]}},
                         max_blocks=None)
    assert len(model.layer3) == 700


@pytest.mark.slow
@pytest.mark.parametrize("name", resfam.list_models())
def test_size_estimate_is_exact(name):
    """The meta-device count (4 blocks a stage, the rest extrapolated) equals the real model's
    parameter and buffer bytes for every bundled variant; so does the analytic counter's
    parameter count, at full depth (tests/test_analytic.py holds its operations to fvcore's)."""
    from resfam.comparison.analytic import tally
    from resfam.spec.build_args import check_build_args

    spec = resfam.get_spec(name)
    estimate = sum(part_bytes(spec, check_build_args(spec, {}), ResFamNet.skeleton).values())
    with torch.device("meta"):  # every tensor, with its shape and dtype, and no storage
        model = resfam.build(name)
    assert estimate == sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    assert tally(spec).params == sum(p.numel() for p in model.parameters())


# --- escapes: plain Python errors where a resfam error is promised ---------------------------

BASE = """
    name: mynet
    family: custom
    stem: {type: cifar, width: 16}
    stages: {depth: [1, 1], width: [16, 32], stride: [1, 2]}
    block: {type: basic}
"""


@pytest.mark.parametrize("block_type,key", [("{a: 1}", "block.type"), ("3", "block.type"),
                                            ("[[basic], basic]", "block.type[0]"),
                                            ("[basic, {a: 1}]", "block.type[1]")])
def test_block_type_must_be_one_name_or_one_per_stage(tmp_path, no_allocation, block_type, key):
    path = write(tmp_path, BASE.replace("type: basic", f"type: {block_type}"))
    with pytest.raises(resfam.SpecError) as e:
        resfam.build(str(path))
    assert e.value.key == key and "one of: basic" in str(e.value)


def test_block_type_per_stage(tmp_path):
    path = write(tmp_path, BASE.replace("type: basic", "type: [basic, bottleneck]"))
    model = resfam.build(str(path))
    assert model.layer1[0].conv2.kernel_size == (3, 3) and model.layer2[0].conv3.kernel_size == (1, 1)
    short = write(tmp_path, BASE.replace("type: basic", "type: [basic]"))
    with pytest.raises(resfam.SpecError, match="per-stage list has 1 entries for 2 stages") as e:
        resfam.build(str(short))
    assert e.value.key == "block.type"


def test_non_utf8_spec(tmp_path, no_allocation):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(resfam.SpecError, match="not UTF-8"):
        resfam.build(str(path))


def test_deep_nesting_and_long_extends_chains(tmp_path, no_allocation):
    path = write(tmp_path, BASE + "    note: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(resfam.SpecError, match="nested more than"):
        resfam.build(str(path))
    chain = "variants:\n  v0: {extends: resnet20}\n" + "".join(
        f"  v{i}: {{extends: v{i - 1}}}\n" for i in range(1, 60))
    path = write(tmp_path, chain, "chain.yaml")
    with pytest.raises(resfam.SpecError, match="chain longer than 32") as e:
        resfam.build(f"{path}:v59")
    assert e.value.key == "extends" and e.value.variant == "v59"


@pytest.mark.parametrize("ref", [None, 5, 1.5, ["resnet18"], b"resnet18"])
def test_build_takes_names_paths_mappings_and_specs_only(no_allocation, ref):
    with pytest.raises(resfam.SpecError, match="expected a model name"):
        resfam.build(ref)


@pytest.mark.parametrize("state,fragment", [
    ({"conv1.weight": [1.0, 2.0]}, "holds a list, not a tensor"),
    ({1: torch.zeros(1)}, "keys must be strings"),
    ([torch.zeros(1)], "holds a list, not a state dict"),
])
def test_checkpoint_contents_are_checked(tmp_path, state, fragment):
    torch.save(state, tmp_path / "odd.pth")
    with pytest.raises(resfam.CheckpointError, match=fragment):
        resfam.load_pretrained(resfam.build("resnet18"), tmp_path / "odd.pth")


def test_converter_input_with_unexpected_stage_names():
    state = {"layer9.0.bn3.weight": torch.zeros(4), "stages.7.blocks.0.norm1.weight": torch.zeros(4)}
    out = resfam.convert_state_dict(state, "iresnet50")
    assert "layer9.0.bn3.weight" in out and "layer8.0.bn0.weight" in out


def test_load_pretrained_needs_a_resfam_model(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(resfam.ResfamError, match="expects a resfam model.*load_state_dict"):
        resfam.load_pretrained(torchvision.models.resnet18(), tmp_path / "r18.pth")
    with pytest.raises(resfam.ResfamError, match="expected a resfam model"):
        resfam.convert_state_dict({}, torchvision.models.resnet18())
    with pytest.raises(resfam.ResfamError, match="checkpoint path must be"):
        resfam.load_pretrained(resfam.build("resnet18"), None)


# --- build() arguments -----------------------------------------------------------------------

BAD_ARGS = {
    "num_classes='10'": (dict(num_classes="10"), "num_classes", "valid integer"),
    "in_chans=1.5": (dict(in_chans=1.5), "in_chans", "valid integer"),
    "frozen_stages=None": (dict(frozen_stages=None), "frozen_stages", "valid integer"),
    "out_indices='12'": (dict(out_indices="12"), "out_indices", "not allowed"),
    "num_classes=-1": (dict(num_classes=-1), "num_classes", "greater than or equal to 0"),
    "drop_rate=1.0": (dict(drop_rate=1.0), "drop_rate", "less than 1"),
    "drop_rate=nan": (dict(drop_rate=math.nan), "drop_rate", "finite number"),
    "zero_init_last='no'": (dict(zero_init_last="no"), "zero_init_last", "valid boolean"),
    "in_chans=0": (dict(in_chans=0), "in_chans", "greater than or equal to 1"),
    "drop_path_rate=2": (dict(drop_path_rate=2), "drop_path_rate", "less than 1"),
    "duplicate out_indices": (dict(out_indices=[1, 1]), "out_indices", "names a level twice"),
    "wrapped duplicate": (dict(out_indices=[4, -1]), "out_indices", "names a level twice"),
    "out_indices out of range": (dict(out_indices=[7]), "out_indices", "[7] out of range"),
    "empty out_indices": (dict(out_indices=[]), "out_indices", "is empty"),
    "frozen_stages too large": (dict(frozen_stages=5), "frozen_stages", "has 4 stages"),
    "output_stride=4": (dict(output_stride=4), "output_stride", "8, 16 or 32"),
    "norm_layer='batch'": (dict(norm_layer="batch"), "norm_layer", "'bn'"),
    "unknown argument": (dict(num_clases=10), "num_clases", "did you mean 'num_classes'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_bad_build_arguments(no_allocation, case):
    kwargs, key, fragment = BAD_ARGS[case]
    with pytest.raises(resfam.BuildArgumentError) as e:
        resfam.build("resnet18", **kwargs)
    assert e.value.key == key and e.value.variant == "resnet18", str(e.value)
    assert fragment in str(e.value), str(e.value)


def test_resfamnet_called_directly_gets_the_same_checks(no_allocation):
    spec = resfam.get_spec("resnet18")
    with pytest.raises(resfam.BuildArgumentError, match="drop_path_rate"):
        ResFamNet(spec, drop_path_rate=2.0)
    with pytest.raises(resfam.BuildArgumentError, match="takes a resolved Spec"):
        ResFamNet("resnet18")


# --- names vs paths, shared state ------------------------------------------------------------

def test_bare_names_are_registered_names_whatever_the_cwd_holds(tmp_path, monkeypatch):
    (tmp_path / "resnet18").mkdir()
    (tmp_path / "resnet20").write_text("not a spec")
    monkeypatch.chdir(tmp_path)
    assert resfam.build("resnet18").spec.name == "resnet18"
    assert resfam.build("resnet20").spec.name == "resnet20"


def test_a_user_file_may_redefine_a_bundled_name(tmp_path):
    path = write(tmp_path, "name: resnet20\nextends: resnet20\nhead: {num_classes: 7}\n", "resnet20.yaml")
    model = resfam.build(str(path))
    assert model.spec.name == "resnet20" and model.num_classes == 7


def test_specs_handed_out_are_the_callers_own():
    spec = resfam.get_spec("resnext50_32x4d")
    spec.raw["block"]["groups"] = 1
    spec.model.block["groups"] = 3
    spec.raw["stages"]["depth"].append(9)
    assert resfam.get_spec("resnext50_32x4d").model.block["groups"] == 32
    assert resfam.get_spec("resnext50_32x4d").raw["stages"]["depth"] == [3, 4, 6, 3]
    mapping = {"extends": "resnet20", "name": "mine"}
    resfam.get_spec(mapping)
    assert mapping == {"extends": "resnet20", "name": "mine"}


# --- the CLI ---------------------------------------------------------------------------------

@pytest.fixture
def no_sweep(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sweep ran despite a usage error")

    from resfam.comparison import sweep  # resfam-compare imports it after its usage checks

    monkeypatch.setattr(sweep, "run_targets", refuse)


@pytest.mark.parametrize("flags,fragment", [
    (["--batch-size", "0"], "--batch-size: must be >= 1"),
    (["--runs", "0"], "--runs: must be >= 1"),
    (["--threads", "-1"], "--threads: must be >= 1"),
    (["--img-size", "0"], "--img-size: must be >= 1"),
    (["--warmup", "x"], "expected a whole number"),
    (["--device", "meta"], "cannot run a model"),
    (["--device", "gpu0"], "is not a device"),
    (["--output", "/no/such/dir/out.csv"], "--output /no/such/dir/out.csv: cannot write there"),
    (["--plot", "/no/such/dir/p.png"], "cannot write there"),
    (["--plot", "p.jpg"], "unsupported image type"),
    (["--batch-size", "20000"], "input batch alone"),
])
def test_cli_usage_errors_exit_2_before_measuring(no_sweep, capsys, flags, fragment):
    with pytest.raises(SystemExit) as e:
        raise SystemExit(cli.main(["resnet18", "--no-progress", *flags]))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err and err.count("\n") == 1, err


def test_cli_output_into_a_directory(no_sweep, tmp_path, capsys):
    assert cli.main(["resnet18", "--output", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_ctrl_c_keeps_the_rows_measured(tmp_path, monkeypatch, capsys):
    from resfam.comparison import sweep

    calls = []

    def measure(ref, **kwargs):
        calls.append(ref)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return [{"model": ref.ref, "params": 1}]

    monkeypatch.setattr(sweep, "measure_rows", measure)
    out = tmp_path / "rows.csv"
    rc = cli.main(["resnet18", "resnet34", "resnet50", "resnet101", "--format", "csv",
                   "--output", str(out), "--no-progress"])
    assert rc == 130
    lines = [line.split(",")[:2] for line in out.read_text().splitlines()]
    assert lines == [["model", "params"], ["resnet18", "1"], ["resnet34", "1"]]
    assert "interrupted after 2 of 4 models" in capsys.readouterr().err


def test_cli_plot_says_the_file_it_wrote(tmp_path, monkeypatch, capsys):
    from resfam.comparison import sweep

    monkeypatch.setattr(sweep, "measure_rows", lambda ref, **kw: [{
        "model": ref.ref, "family": "resnet", "params": 1e6, "gmacs": 1.0, "latency_ms": 2.0}])
    folder = tmp_path / "plots"
    folder.mkdir()
    assert cli.main(["resnet18", "--plot", str(folder), "--no-progress"]) == 0
    assert (folder / "resfam-compare.png").is_file()
    assert f"wrote {folder / 'resfam-compare.png'}" in capsys.readouterr().err
    assert cli.main(["resnet18", "--plot", str(tmp_path / "noext"), "--no-progress"]) == 0
    assert (tmp_path / "noext.png").is_file()
    assert f"wrote {tmp_path / 'noext.png'}" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(flop=True), "unknown option 'flop' (did you mean 'flops'?)"),
    (dict(batch_size=0), "batch_size must be an int >= 1"),
    (dict(runs=True), "runs must be an int >= 1"),
    (dict(latency="yes"), "latency must be True or False"),
    (dict(dtype="int8"), "dtype must be one of"),
])
def test_python_compare_checks_its_options_first(kwargs, fragment):
    with pytest.raises(resfam.ArgumentError, match=re.escape(fragment)):
        resfam.compare(["resnet20"], **kwargs)


@pytest.mark.parametrize("pattern", [5, None, ["res*", 3]])
def test_list_models_takes_patterns(pattern):
    with pytest.raises(resfam.ArgumentError, match="fnmatch patterns"):
        resfam.list_models(pattern)
