"""Nothing lost, nothing silently wrong (issue 23's classes, one test or more each): what was
accepted and should not have been, outputs damaged by a kill or a full disk, half-loaded models,
unbounded work, and plain Python errors where a ResfamError is promised."""
import math
import os
import re
import signal
import warnings

import pytest
import torch

import resfam
from resfam.comparison import cli
from resfam.files import AppendLog, check_output, replace_atomically, write_text_atomically
from resfam.trainability import data as datasets
from resfam.trainability.train import _run_path, spec_digest
from resfam.weights.checkpoint import load_state
from resfam.weights.convert import convert_state_dict

# --- YAML values PyYAML's safe constructor cannot convert, and keys given twice ---------------

BAD_VALUES = ["2001-02-30", "!!int abc", "!!float ''", "!!bool maybe", "!!timestamp nope",
              "9" * 4301, "!!binary zz", "{[1]: 2}"]


@pytest.mark.parametrize("value", BAD_VALUES)
def test_a_value_yaml_cannot_read_is_a_spec_error_at_its_line(tmp_path, value):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nextends: resnet18\nreported: {{note: {value}}}\n")
    with pytest.raises(resfam.SpecError, match=r"bad.yaml: malformed YAML at line 3"):
        resfam.get_spec(str(path))


@pytest.mark.parametrize("text, line", [
    ("name: x\nextends: resnet18\nhead: {num_classes: 10}\nhead: {num_classes: 20}\n", 4),
    ("name: x\nextends: resnet18\nstages: {depth: [1, 1, 1, 1], depth: [2, 2, 2, 2]}\n", 3),
    ("variants:\n  a: {extends: resnet18}\n  a: {extends: resnet34}\n", 3),
])
def test_a_key_given_twice_is_refused(tmp_path, text, line):
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    with pytest.raises(resfam.SpecError, match=rf"at line {line}, .*duplicate key .*first at line"):
        resfam.get_spec(str(path) + (":a" if "variants" in text else ""))


def test_a_merge_key_may_still_be_overridden(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("name: m\nextends: resnet18\nhead:\n  <<: {num_classes: 10, drop_rate: 0.1}\n"
                    "  num_classes: 20\n")
    head = resfam.get_spec(str(path)).model.head
    assert (head.num_classes, head.drop_rate) == (20, 0.1)


def test_a_spec_file_overwritten_with_the_same_size_and_time_is_read_again(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("name: net\nextends: resnet18\nhead: {num_classes: 10}\n")
    assert resfam.get_spec(str(path)).model.head.num_classes == 10
    st = path.stat()
    path.write_text("name: net\nextends: resnet18\nhead: {num_classes: 20}\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old modification time
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert resfam.get_spec(str(path)).model.head.num_classes == 20


# --- schema gaps: a bool or a float where a whole number is meant ----------------------------

@pytest.mark.parametrize("raw, key", [
    (dict(extends="resnet18", stages=dict(stride=[1, 2, 2, True])), "stages.stride[3]"),
    (dict(extends="resnet18", stages=dict(stride=[1, 2, 2, 2.0])), "stages.stride[3]"),
    (dict(extends="resnet18", merge=dict(type="gate", kernel_size=3.0)), "merge.kernel_size"),
])
def test_whole_number_choices_take_no_bool_or_float(raw, key):
    with pytest.raises(resfam.SpecError, match=rf"key '{re.escape(key)}': should be .* a whole number"):
        resfam.get_spec(raw)


@pytest.mark.parametrize("value", [16.0, True])
def test_output_stride_takes_no_bool_or_float(value):
    with pytest.raises(resfam.BuildArgumentError, match="output_stride.*should be 8 or 16 or 32"):
        resfam.build("resnet18", output_stride=value)


# --- Python API and study arguments checked before any work ----------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: resfam.train([]), "at least one model"),
    (lambda: resfam.train("resnet20", seeds=[0, 0]), "names a seed twice"),
    (lambda: resfam.train("resnet20", out=None), "out must be a folder path"),
    (lambda: resfam.probe("resnet20", img_size=0), "img_size must be a whole number >= 8"),
    (lambda: resfam.probe("resnet20", img_size=100_000, batch_size=4), "more than 2 GiB"),
    (lambda: resfam.probe(None), "probe\\(\\) takes"),
    (lambda: resfam.compare(5), "models: a name"),
    (lambda: resfam.compare([]), "no models; pass None"),
    (lambda: resfam.train(5), "train\\(\\) takes a model name"),
    (lambda: resfam.compare(["resnet18", "resnet34"], workers=0), "workers must be"),
    (lambda: resfam.optimize_for_inference(None), "expects an nn.Module"),
    (lambda: resfam.prepare_finetune(resfam.build("resnet18"), lr=math.inf), "and finite"),
    (lambda: resfam.prepare_finetune(resfam.build("resnet18"), num_classes=10 ** 12), "GiB"),
    (lambda: datasets.load("digits:"), "nothing after ':'"),
    (lambda: resfam.detection.torchvision_fpn_backbone("resnet18", out_channels=0), "out_channels"),
])
def test_a_bad_argument_is_one_resfam_error(call, match):
    with pytest.raises(resfam.ResfamError, match=match):
        call()


def test_a_study_refuses_two_different_networks_of_one_name(tmp_path):
    mine = tmp_path / "resnet20.yaml"
    mine.write_text("name: resnet20\nextends: resnet20\nstages: {depth: [1, 1, 1]}\n")
    with pytest.raises(resfam.ArgumentError, match="both named 'resnet20'.*they differ"):
        resfam.train(["resnet20", str(mine)], data="digits", epochs=1, out=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_run_files_are_named_by_content_as_well_as_name(tmp_path):
    a = resfam.get_spec({"name": "net a", "extends": "resnet20"})
    b = resfam.get_spec({"name": "net_a", "extends": "resnet20", "stages": {"depth": [1, 1, 1]}})
    same = resfam.get_spec({"name": "net_a", "extends": "resnet20"})
    assert _run_path("o", a, 0) != _run_path("o", b, 0)  # both clean to net_a
    assert spec_digest(a) == spec_digest(resfam.get_spec({"name": "net a", "extends": "resnet20"}))
    assert spec_digest(same) != spec_digest(a)  # the name is part of the content


@pytest.mark.parametrize("make, match", [
    (lambda out: out.write_text("x"), "is a file, not a folder"),
    (lambda out: (out.mkdir(), (out / "runs").write_text("x")), "runs is a file"),
    (lambda out: (out.mkdir(), (out / "curves.png").mkdir()), "curves.png: is a directory"),
])
def test_a_study_folder_mistake_is_found_before_training(tmp_path, make, match):
    out = tmp_path / "study"
    make(out)
    with pytest.raises(resfam.ResfamError, match=match):
        resfam.train("resnet20", data="digits", epochs=1, out=str(out))


# --- checkpoints: nothing malformed loads, nothing suspicious loads without a word -----------

@pytest.fixture(scope="module")
def state():
    return resfam.build("resnet18").state_dict()


def _load(model, state, change):
    s = {k: v.clone() for k, v in state.items()}
    change(s)
    return load_state(model, s, "ckpt")


@pytest.mark.parametrize("change, in_chans", [
    (lambda s: s.update({"fc.weight": torch.randn(1000, 512, 1), "fc.bias": torch.randn(1000, 1)}), 3),
    (lambda s: s.update({"fc.weight": torch.randn(1000, 128, 2, 2)}), 3),  # not a 1x1 conv head
    (lambda s: s.update({"conv1.weight": torch.randn(64, 2, 7, 7)}), 1),  # not an RGB stem
    (lambda s: s.update({"conv1.weight": torch.randn(64, 0, 7, 7)}), 1),
    (lambda s: s.update({"conv1.weight": torch.tensor(1.0)}), 1),
    (lambda s: s.update({"conv1.weight": torch.randn(64, 2, 7, 7)}), 4),
])
def test_a_malformed_head_or_stem_is_refused_and_the_model_untouched(state, change, in_chans):
    model = resfam.build("resnet18", num_classes=10, in_chans=in_chans)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(resfam.CheckpointError, match="do not fit"):
        _load(model, state, change)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_classifier_of_another_size_is_still_dropped_and_an_rgb_stem_adapted(state):
    report = _load(resfam.build("resnet18", num_classes=10, in_chans=1), state, lambda s: None)
    assert report.dropped == ["fc.weight", "fc.bias"] and report.adapted == ["conv1.weight"]


@pytest.mark.parametrize("change, why", [
    (lambda s: s["layer1.0.conv1.weight"].view(-1)[0].fill_(math.nan), "NaN or Inf"),
    (lambda s: s["layer2.0.bn1.weight"].view(-1)[3].fill_(math.inf), "NaN or Inf"),
    (lambda s: s["layer1.0.bn1.running_var"].view(-1)[0].fill_(-1.0), "negative variance"),
])
def test_values_no_trained_network_has_load_with_a_warning_and_a_report_line(state, change, why):
    with pytest.warns(UserWarning, match=why):
        report = _load(resfam.build("resnet18"), state, change)
    assert len(report.suspicious) == 1 and why in report.suspicious[0] and "suspicious 1" in str(report)


def test_a_clean_checkpoint_loads_without_a_warning(state):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _load(resfam.build("resnet18"), state, lambda s: None).suspicious == []


def test_ctrl_c_during_a_load_leaves_the_model_as_it_was(state, monkeypatch):
    model = resfam.build("resnet18")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    real = torch.nn.Module.load_state_dict

    def copy_half_then_interrupt(self, sd, strict=True, **kw):
        half = dict(list(sd.items())[: len(sd) // 2])
        real(self, half, strict=False)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.nn.Module, "load_state_dict", copy_half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _load(model, state, lambda s: s.update({k: v + 1 for k, v in s.items() if v.is_floating_point()}))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    assert changed == []


def test_legacy_senet_stem_keys_without_a_counterpart_are_kept_not_a_crash():
    state = {"layer0.conv1.weight": torch.zeros(64, 3, 3, 3), "layer0.conv3.weight": torch.zeros(1),
             "layer0.conv4.weight": torch.zeros(1)}
    assert "layer0.conv4.weight" in convert_state_dict(state, "legacy_seresnet18")


# --- outputs: whole or not at all, one writer, never a blocking open --------------------------

def test_an_output_that_is_a_fifo_a_device_or_a_folder_is_refused_before_any_work(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in ((str(fifo), "not a regular file"), ("/dev/full", "not a regular file"),
                      (str(tmp_path), "is a directory"), (str(tmp_path / "no" / "x.csv"), "does not exist")):
        with pytest.raises(resfam.ResfamError, match=why):
            check_output(path, "--output")


def test_resfam_compare_refuses_a_fifo_output_at_once(tmp_path, capsys):
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    assert cli.main(["resnet18", "--output", str(fifo), "--no-progress"]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_an_interrupted_replacement_keeps_the_old_content(tmp_path):
    path = tmp_path / "report.csv"
    path.write_text("old\n")

    def half_then_interrupt(tmp):
        with open(tmp, "w") as f:
            f.write("new, but only half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(str(path), half_then_interrupt)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["report.csv"]
    write_text_atomically(str(path), "new\n")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["report.csv"]


def test_a_full_disk_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "report.csv"
    path.write_text("old\n")

    def full(tmp):
        raise OSError(28, "No space left on device")

    with pytest.raises(resfam.ResfamError, match="No space left on device.*old content is kept"):
        replace_atomically(str(path), full)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["report.csv"]


def test_an_append_log_cuts_a_torn_line_keeps_old_rows_until_new_ones_and_has_one_writer(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"model": "a"}\n{"model": "b"}\n{"model": "c", "par')  # killed mid-line
    with AppendLog(str(path), resume=True) as log:
        with pytest.raises(resfam.ResfamError, match="another process is writing it"):
            AppendLog(str(path), resume=True)
        log.write_lines(['{"model": "d"}'])
    assert path.read_text() == '{"model": "a"}\n{"model": "b"}\n{"model": "d"}\n'
    with AppendLog(str(path), resume=False) as log:  # a new sweep: the old rows stay until...
        assert path.read_text().count("\n") == 3
        log.write_lines(['{"model": "e"}'])  # ...the first new row replaces them whole
        log.write_lines(['{"model": "f"}'])
    assert path.read_text() == '{"model": "e"}\n{"model": "f"}\n'
    assert sorted(os.listdir(tmp_path)) == ["rows.jsonl"]  # no temporary or lock file left


def test_resume_recognises_the_rows_of_a_spec_file(tmp_path, capsys):
    spec = tmp_path / "two.yaml"
    spec.write_text("variants:\n  small: {extends: resnet18, stages: {depth: [1, 1, 1, 1]}}\n"
                    "  big: {extends: resnet18}\n")
    out = str(tmp_path / "rows.jsonl")
    assert cli.main([str(spec), "resnet18", "--output", out, "--no-progress"]) == 0
    with open(out, "a") as f:
        f.write('{"model": "resn')  # a torn last line
    assert cli.main([str(spec), "resnet18", "resnet34", "--output", out, "--resume", "--no-progress"]) == 0
    assert "3 rows in" in capsys.readouterr().err
    import json
    rows = [json.loads(line) for line in open(out)]
    assert [r["model"] for r in rows] == ["small", "big", "resnet18", "resnet34"]
    assert rows[0]["target"] == f"{spec}:small"


# --- unbounded work and allocations refused before they start --------------------------------

def _guard(seconds=120):
    def alarm(*_):
        raise TimeoutError(f"took longer than {seconds} s: a hang")
    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)


def test_the_analytic_counter_refuses_what_build_refuses_for_its_depth(tmp_path):
    deep = {"name": "deep", "extends": "resnet18", "stages": {"depth": [100_000_000, 1, 1, 1]}}
    _guard()
    try:
        from resfam.comparison.analytic import tally

        with pytest.raises(resfam.BuildArgumentError, match="max_blocks"):
            tally(resfam.get_spec(deep))
    finally:
        signal.alarm(0)


def test_split_attention_widths_are_checked_before_a_conv_is_made():
    with pytest.raises(resfam.SpecError, match="block.splat.radix.*groups x radix"):
        resfam.build({"extends": "resnest50d", "block": {"base_width": 1}})


def test_a_flatten_head_is_sized_without_allocating_its_input():
    """The dry forward that finds a flatten head's width runs on the meta device: the width is
    right, and a huge input_size is refused by the size check naming input_size."""
    model = resfam.build({"extends": "mnist_resnet", "input_size": 64})
    assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    with pytest.raises(resfam.BuildArgumentError, match="input_size=20000 with head.pool flatten"):
        resfam.build({"extends": "mnist_resnet", "input_size": 20000})


def test_mmdet_out_indices_and_per_stage_lists_follow_mmdet():
    pytest.importorskip("mmengine")
    from resfam.integrations.mmdet import ResFamBackbone

    for kwargs, key in ((dict(out_indices=(-1,)), "out_indices"), (dict(strides=(1, 2)), "strides"),
                        (dict(dilations=(1, 1, 1, 2, 2)), "dilations"),
                        (dict(num_stages=3, out_indices=(0, 1, 2, 3)), "out_indices")):
        with pytest.raises(resfam.BuildArgumentError, match=f"argument '{key}'"):
            ResFamBackbone("resnet18", **kwargs)
    assert len(ResFamBackbone("resnet18", num_stages=3, strides=(1, 2, 2), out_indices=(0, 1, 2))(
        torch.randn(1, 3, 64, 64))) == 3


# --- leftover torchrun variables and a peer that never comes ----------------------------------

@pytest.mark.parametrize("env, match", [
    ({"RANK": "1"}, "RANK=1 .* WORLD_SIZE=1.*leftover torchrun variables"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0"),
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not a whole number"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR and MASTER_PORT unset"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, "RANK=2"),
])
def test_leftover_torchrun_variables_are_refused_by_both_clis(monkeypatch, capsys, tmp_path, env, match):
    from resfam.trainability.cli import train_main

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["resnet18", "resnet34", "--no-progress"]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert train_main(["resnet20", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "s"),
                       "--no-plot"]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert not (tmp_path / "s").exists()


def test_a_peer_that_never_comes_is_an_error_after_the_rendezvous_timeout(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), RESFAM_RENDEZVOUS_TIMEOUT="2")
    proc = subprocess.run([sys.executable, "-m", "resfam.comparison", "resnet18", "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    assert "rank 0 of 2: no rendezvous with the other processes" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- bounds on the work a flag or an argument can ask for --------------------------------------

@pytest.mark.parametrize("argv, match", [
    (["--threads", str(2 ** 63)], "--threads: must be >= 1 and <= 1024"),
    (["--runs", "1000000000"], "--runs: must be >= 1 and <= 10000"),
    (["--warmup", "1000000000"], "--warmup: must be >= 0 and <= 10000"),
])
def test_resfam_compare_bounds_its_flags(capsys, argv, match):
    with pytest.raises(SystemExit) as e:
        cli.main(["resnet18", *argv])
    assert e.value.code == 2 and match in capsys.readouterr().err


@pytest.mark.parametrize("call, match", [
    (lambda: resfam.compare("resnet18", latency=True, runs=10 ** 9), "runs must be an int >= 1 and <= 10000"),
    (lambda: resfam.probe("resnet20", seed=2 ** 64), "seed must be a whole number"),
    (lambda: resfam.train("resnet20", seeds=[2 ** 64]), "seeds: a count"),
    (lambda: resfam.train("resnet20", seeds=10 ** 9), "seeds: a count"),
])
def test_python_arguments_are_bounded(call, match):
    with pytest.raises(resfam.ResfamError, match=match):
        call()


def test_a_data_set_too_large_once_resized_is_refused_before_it_is_resized(tmp_path):
    with pytest.raises(resfam.ResfamError, match="digits resized to 1024x1024 would take"):
        datasets.check_prepared_size(datasets.load("digits"), 1024)
    datasets.check_prepared_size(datasets.load("digits"), 64)


# --- damaged files to resume from, and data folders that cannot be read -------------------------

COMPARE_RESUME_DAMAGE = [b"\x00\x01\x02garbage", b"\xff\xfe\xfa not utf-8\n", b"5\n", b"[]\n",
                         b'{"no model": 1}\n', b'{"model": 5}\n', b'{"model": "resnet18"' + b" " * 100_000,
                         b"\n\n\n", b'{"model": "resnet18", "params": 1}\n{"mod', b""]


@pytest.mark.parametrize("damage", COMPARE_RESUME_DAMAGE)
def test_resfam_compare_resumes_from_any_damaged_jsonl(tmp_path, capsys, damage):
    out = tmp_path / "rows.jsonl"
    out.write_bytes(damage)
    assert cli.main(["resnet18", "resnet20", "--output", str(out), "--resume", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    import json
    models = [json.loads(line)["model"] for line in out.read_text(errors="replace").splitlines()
              if line.startswith('{"model": "res') and line.endswith("}")]
    assert "resnet20" in models and models.count("resnet18") == 1


def _run_record(tmp_path):
    """A one-epoch study of resnet20 on digits, and the path of its run record."""
    out = tmp_path / "study"
    resfam.train("resnet20", data="digits", epochs=1, out=str(out), img_size=8)
    (path,) = (out / "runs").glob("resnet20-*-seed0.pt")
    return out, path


def test_resfam_train_refuses_every_damaged_run_record_with_one_error(tmp_path):
    out, path = _run_record(tmp_path)
    good = torch.load(path, weights_only=True)
    state = {k: v for k, v in good["model_state"].items()}
    damages = {
        "truncated": lambda: path.write_bytes(path.read_bytes()[:100]),
        "empty": lambda: path.write_bytes(b""),
        "a list": lambda: torch.save([1, 2], path),
        "no rows": lambda: torch.save({k: v for k, v in good.items() if k != "rows"}, path),
        "rows of strings": lambda: torch.save(dict(good, rows=["x"]), path),
        "params a string": lambda: torch.save(dict(good, params="many"), path),
        "another model": lambda: torch.save(dict(good, model="resnet32"), path),
        "wrong shapes": lambda: torch.save(dict(good, rows=[], model_state={k: v.flatten()[:1]
                                                                            for k, v in state.items()}), path),
    }
    for what, damage in damages.items():
        damage()
        with pytest.raises(resfam.CheckpointError, match="delete it to start that run again"):
            resfam.train("resnet20", data="digits", epochs=1, out=str(out), img_size=8, resume=True)


@pytest.mark.parametrize("make, match", [
    (lambda root: None, "holds no images|cannot read"),
    (lambda root: (root / "train" / "a" / "x.png").write_bytes(b"not a png"), "cannot read"),
])
def test_a_data_folder_with_no_or_corrupt_images_is_one_error(tmp_path, make, match):
    root = tmp_path / "data"
    for split in ("train", "val"):
        (root / split / "a").mkdir(parents=True)
    make(root)
    with pytest.raises(resfam.ResfamError, match=match):
        datasets.load(f"folder:{root}")


def test_probe_and_training_work_inside_a_callers_no_grad():
    """A backward pass of its own, whatever grad mode the caller is in (found by the fuzzer: a
    Ctrl-C inside torch's no_grad() left grad mode off, and resfam-probe then escaped)."""
    with torch.no_grad():
        result = resfam.probe("resnet20", batch_size=2, img_size=8)
        assert result.grads and all(g["grad_norm"] > 0 for g in result.grads)


def test_a_full_disk_is_found_by_the_real_write_before_any_work(tmp_path, monkeypatch):
    import tempfile

    class Full:
        def __init__(self, *a, **kw):
            pass

        def __enter__(self):
            raise OSError(28, "No space left on device")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", Full)
    with pytest.raises(resfam.ResfamError, match="cannot write there .No space left on device"):
        check_output(str(tmp_path / "report.csv"), "--output")


def test_a_run_file_that_is_a_fifo_is_refused_not_waited_on(tmp_path):
    out, path = _run_record(tmp_path)
    path.unlink()
    os.mkfifo(path)
    _guard()
    try:
        with pytest.raises(resfam.CheckpointError, match="not a regular file"):
            resfam.train("resnet20", data="digits", epochs=1, out=str(out), img_size=8, resume=True)
    finally:
        signal.alarm(0)


def test_a_latex_table_is_ascii_that_pdflatex_reads(tmp_path, capsys):
    """The paper table's headers (Delta params %) and any user model name reach a .tex file as
    ASCII LaTeX: pdflatex without a Unicode package stops at a raw UTF-8 character."""
    from resfam.comparison.report import latex_ascii

    out = tmp_path / "t.tex"
    assert cli.main(["resnet50", "--paper", "--flops", "--output", str(out), "--no-progress"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.isascii() and r"$\Delta$GMACs\%" in text
    assert latex_ascii("Δ ± naïve") == r"$\Delta$ $\pm$ na?ve"


@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None,
                    reason="pdflatex is not installed (apt-get install texlive-latex-base "
                           "texlive-latex-recommended); the ASCII check above runs everywhere")
def test_the_latex_table_compiles_with_pdflatex(tmp_path):
    import subprocess

    out = tmp_path / "t.tex"
    assert cli.main(["resnet50", "resnest101e", "--paper", "--flops", "--output", str(out),
                     "--no-progress"]) == 0
    (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n"
                                      "\\begin{document}\n\\input{t.tex}\n\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000


def test_a_report_killed_at_random_moments_is_its_old_content_or_complete(tmp_path):
    """SIGKILL (no cleanup of any kind) at a random moment after the sweep has started: the
    report is the old file or a complete new one, never empty or cut."""
    import csv
    import random
    import subprocess
    import sys
    import time

    models = ["resnet20", "plain20", "resnet32", "resnet18"]
    rng = random.Random(0)
    seen = set()
    for i, delay in enumerate([None] + [rng.uniform(0, 1.5) for _ in range(4)]):
        out = tmp_path / f"report{i}.csv"
        out.write_text("old\n")
        proc = subprocess.Popen([sys.executable, "-m", "resfam.comparison", *models, "--latency",
                                 "--runs", "2", "--warmup", "0", "--output", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if delay is not None:
            while "resfam-compare" not in (proc.stderr.readline() or "resfam-compare"):
                pass  # the header: imports done, the sweep begins
            time.sleep(delay)
            proc.kill()
        proc.communicate(timeout=300)
        text = out.read_text()
        if text == "old\n":
            seen.add("old")
            continue
        rows = list(csv.DictReader(text.splitlines()))
        assert text.endswith("\n") and rows and all(r["model"] in models for r in rows), text[:200]
        seen.add("new")
    assert "new" in seen  # the run left alone wrote its report


def test_a_disk_that_fills_during_the_sweep_is_one_line_and_the_old_report_stays(tmp_path, capsys,
                                                                                 monkeypatch):
    import resfam.files

    out = tmp_path / "report.csv"
    out.write_text("old\n")
    real = resfam.files.replace_atomically

    def full(path, write):  # the check before the sweep passed; the final write finds no space
        def no_space(tmp):
            raise OSError(28, "No space left on device")
        return real(path, no_space)

    monkeypatch.setattr(resfam.files, "replace_atomically", full)
    assert cli.main(["resnet20", "--output", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "No space left on device" in err and "Traceback" not in err
    assert out.read_text() == "old\n"


def test_a_written_report_has_a_new_files_permissions_or_its_old_ones(tmp_path):
    """replace_atomically writes through mkstemp (0600): the result must not stay private."""
    import os
    import stat

    from resfam.files import write_text_atomically

    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.csv"
        write_text_atomically(str(new), "a\n")
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.csv"
        kept.write_text("old\n")
        kept.chmod(0o640)
        write_text_atomically(str(kept), "new\n")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "new\n"
    finally:
        os.umask(umask)
