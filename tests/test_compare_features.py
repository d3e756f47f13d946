"""resfam-compare beyond resfam's own zoo, as a user runs it (subprocess output parsed back):
other libraries' models in the same table, --vs, the counters, output formats and files,
--resume, the out-of-memory retry, and the sweep split over processes."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest
import timm
import torch
import torchvision

import resfam
from resfam.comparison import cli, sweep, timing

CLI = [sys.executable, "-m", "resfam.comparison"]


def run(*args, check_rc=0, cmd=None, env=None):
    """A fresh process, as a user runs it (python -m resfam.comparison, or ``cmd``)."""
    proc = subprocess.run((cmd or CLI) + list(args), capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture
def main(capsys):
    """The same command line in this process (the import is paid once)."""
    def call(*args, check_rc=0):
        try:
            rc = cli.main(list(args))
        except SystemExit as e:  # argparse's --version / usage errors
            rc = e.code
        out, err = capsys.readouterr()
        assert rc == check_rc, err
        return subprocess.CompletedProcess(args, rc, out, err)
    return call


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_foreign_models_in_the_same_table_counted_the_same_way(main, tmp_path):
    out = tmp_path / "rows.json"
    main("resnet50", "timm:resnet50", "tv:resnet50", "timm:convnext_tiny", "--flops", "--acts",
        "--output", str(out), "--no-progress")
    doc = json.loads(out.read_text())  # the suffix chose json
    rows = {r["model"]: r for r in doc["rows"]}
    assert list(rows) == ["resnet50", "timm:resnet50", "tv:resnet50", "timm:convnext_tiny"]
    assert rows["timm:convnext_tiny"]["params"] == n_params(timm.create_model("convnext_tiny"))
    assert rows["tv:resnet50"]["params"] == n_params(torchvision.models.resnet50())
    # the same network counted from resfam's spec and by fvcore on the two libraries' modules
    for key in ("params", "gmacs", "other_mops", "acts_m"):
        assert rows["resnet50"][key] == rows["timm:resnet50"][key] == rows["tv:resnet50"][key], key
    assert rows["resnet50"]["counter"] == "analytic" and rows["tv:resnet50"]["counter"] == "fvcore"
    assert rows["timm:convnext_tiny"]["library"] == "timm" and rows["timm:convnext_tiny"]["gmacs"] > 4


def test_vs_adds_the_reference_row_and_a_speed_ratio(main):
    proc = main("resnet18", "resnet20", "--vs", "timm", "--latency", "--runs", "3", "--warmup", "1",
               "--format", "json", "--no-progress")
    rows = json.loads(proc.stdout)["rows"]
    assert [r["model"] for r in rows] == ["resnet18", "timm:resnet18", "resnet20"]  # timm has no resnet20
    assert rows[1]["ref_for"] == "resnet18" and rows[1]["latency_ms"] > 0
    assert rows[0]["speed_vs_ref"] > 0  # its definition: the test below
    assert "speed_vs_ref" not in rows[2]


def test_speed_vs_ref_is_the_median_of_each_rounds_time_ratio(monkeypatch):
    """Per round, the reference's time / resfam's (1.2, 1.5, 0.9: median 1.2); the throughputs
    alone (medians 30 and 20 ms) would say 1.5."""
    ours, theirs = (10.0, 20.0, 40.0), (12.0, 30.0, 36.0)
    fake = lambda a, b, x, warmup, runs: (timing._summary(list(ours)), timing._summary(list(theirs)))
    monkeypatch.setattr(timing, "alternate_latency", fake)
    rows = sweep.measure_rows("resnet18", latency=True, vs="timm", runs=3, warmup=0)
    assert [r["model"] for r in rows] == ["resnet18", "timm:resnet18"]
    assert rows[0]["speed_vs_ref"] == 1.2
    assert rows[0]["speed_vs_ref_iqr"] == 0.6  # quartiles of three rounds: 0.9 and 1.5
    assert (rows[0]["latency_ms"], rows[1]["latency_ms"]) == (20.0, 30.0)
    assert (rows[0]["latency_q1_ms"], rows[0]["latency_q3_ms"]) == (10.0, 40.0)


def test_several_batch_sizes_give_a_row_each_and_parse_back(main, tmp_path):
    out = tmp_path / "b.csv"
    main("resnet20", "plain20", "--latency", "--flops", "--batch-size", "1,3", "--runs", "2",
         "--warmup", "0", "--output", str(out), "--no-progress")
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["batch"]) for r in rows] == [("resnet20", "1"), ("resnet20", "3"),
                                                       ("plain20", "1"), ("plain20", "3")]
    assert rows[0]["gmacs"] == rows[1]["gmacs"]  # per image, whatever the batch
    table = main("resnet20", "--latency", "--batch-size", "2,1", "--runs", "1", "--warmup", "0",
                 "--no-progress").stdout
    assert "batch 2,1" in table.splitlines()[0] and " batch " in table
    counts = resfam.compare(["resnet20"], batch_size=[1, 4], flops=True)  # untimed: one row
    assert len(counts) == 1
    assert "repeated" in main("resnet20", "--batch-size", "1,1", check_rc=2).stderr
    with pytest.raises(resfam.ArgumentError, match="batch_size"):
        resfam.compare(["resnet20"], batch_size=[1, 0])


@pytest.mark.parametrize("ref,fragment", [
    ("timm:convnext_tinny", "unknown timm model 'convnext_tinny' (did you mean 'convnext_tiny'"),
    ("tv:resnet5", "unknown torchvision model 'resnet5' (did you mean"),
])
def test_unknown_foreign_names_are_one_line_errors(main, ref, fragment):
    proc = main(ref, check_rc=2)
    assert fragment in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("counter", ["fvcore", "torch"])
def test_the_three_counters_agree(main, counter):
    rows = [json.loads(main(*names, "--flops", "--acts", "--counter", c, "--format", "json",
                           "--no-progress").stdout)["rows"]
            for names, c in ((["resnet20", "seresnet50"], counter), (["resnet20", "seresnet50"], "analytic"))]
    for theirs, ours in zip(*rows):
        assert theirs["counter"] == counter and ours["counter"] == "analytic"
        assert {k: theirs[k] for k in ("params", "gmacs", "acts_m")} == {k: ours[k] for k in ("params", "gmacs", "acts_m")}
        if counter == "fvcore":
            assert theirs["other_mops"] == ours["other_mops"]


def test_output_suffix_chooses_the_format(main, tmp_path):
    for suffix, check in ((".csv", lambda t: next(csv.DictReader(io.StringIO(t)))["model"] == "resnet20"),
                          (".tex", lambda t: "\\toprule" in t and "resnet20" in t),
                          (".md", lambda t: "| model" in t)):
        out = tmp_path / f"r{suffix}"
        main("resnet20", "--output", str(out), "--no-progress")
        assert check(out.read_text()), out.read_text()
    row = next(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert row["torch"] == torch.__version__ and row["device"] == "cpu" and int(row["threads"]) >= 1


def test_jsonl_streams_rows_and_resume_skips_them(main, tmp_path):
    out = tmp_path / "rows.jsonl"
    main("resnet20", "resnet32", "--flops", "--output", str(out), "--no-progress")
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model"] for r in first] == ["resnet20", "resnet32"] and first[0]["torch"] == torch.__version__
    proc = main("resnet20", "resnet32", "resnet44", "--flops", "--output", str(out), "--resume")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model"] for r in rows] == ["resnet20", "resnet32", "resnet44"]
    assert rows[:2] == first and "[1/1] resnet44" in proc.stderr  # only the new one measured
    main("resnet20", "--resume", check_rc=2)


def test_a_spec_file_brings_all_its_variants(main, tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("variants:\n  a: {extends: resnet20}\n  b: {extends: resnet32}\n")
    for ref in (str(mine), f"{mine}:*"):
        rows = json.loads(main(ref, "--format", "json", "--no-progress").stdout)["rows"]
        assert [r["model"] for r in rows] == ["a", "b"] and rows[1]["params"] > rows[0]["params"]


def test_list_version_sort_and_python_m_resfam(main):
    names = main("--list", "resnet2*").stdout.split()
    assert names == resfam.list_models("resnet2*")
    assert main("--list", "--family", "highway").stdout.split() == resfam.list_models(family="highway")
    assert main("--version").stdout.strip() == f"resfam {resfam.__version__}"
    rows = json.loads(run("resnet20", "resnet56", "resnet32", "--sort", "-params", "--format",
                          "json", "--no-progress", cmd=[sys.executable, "-m", "resfam"]).stdout)["rows"]
    assert [r["model"] for r in rows] == ["resnet56", "resnet32", "resnet20"]


def test_progress_lines_off_a_terminal_and_a_quiet_memory_profiler():
    proc = run("resnet20", "resnet32", "--memory")
    assert "[1/2] resnet20" in proc.stderr and "[2/2] resnet32" in proc.stderr
    assert "profiler" not in proc.stderr and "Memory block" not in proc.stderr, proc.stderr


def test_an_out_of_memory_batch_is_halved(monkeypatch):
    real = timing.inference_latency

    def fake(model, x, warmup, runs):  # a fake allocator: more than 2 images do not fit
        if x.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, x, warmup, runs)

    monkeypatch.setattr(timing, "inference_latency", fake)
    row = sweep.measure_one("resnet20", latency=True, batch_size=8, runs=2, warmup=0)
    assert row["batch"] == 2 and row["throughput"] > 0 and "error" not in row
    monkeypatch.setattr(timing, "inference_latency", lambda *a: (_ for _ in ()).throw(
        torch.OutOfMemoryError("out of memory")))
    assert "OutOfMemoryError" in sweep.measure_one("resnet20", latency=True, batch_size=4)["error"]


NAMES = ["resnet20", "highway20", "seresnet50"]


@pytest.fixture(scope="module")
def single():
    return json.loads(subprocess.run(CLI + [*NAMES, "--flops", "--acts", "--counter", "fvcore", "--format", "json",
                          "--no-progress"], capture_output=True, text=True, check=True).stdout)["rows"]


def _counts(rows):
    return [{k: r.get(k) for k in ("model", "params", "gmacs", "other_mops", "acts_m")} for r in rows]


def test_torchrun_splits_the_list_and_rank_0_merges(tmp_path, single):
    out = tmp_path / "merged.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "resfam.comparison"]
    run(*NAMES, "--flops", "--acts", "--counter", "fvcore", "--output", str(out), "--no-progress",
        cmd=cmd, env={"OMP_NUM_THREADS": "1"})
    doc = json.loads(out.read_text())
    assert doc["meta"]["ranks"] == 2 and _counts(doc["rows"]) == _counts(single)
    lines = tmp_path / "merged.jsonl"  # streamed rows: every rank's, in the list's order
    run(*NAMES, "--flops", "--acts", "--counter", "fvcore", "--output", str(lines), "--no-progress",
        cmd=cmd, env={"OMP_NUM_THREADS": "1"})
    assert _counts(json.loads(line) for line in lines.read_text().splitlines()) == _counts(single)


def test_workers_and_isolate_equal_one_process(main, single):
    for flags in (["--workers", "2"], ["--isolate"]):
        rows = json.loads(main(*NAMES, "--flops", "--acts", "--counter", "fvcore", "--format", "json",
                              "--no-progress", *flags).stdout)["rows"]
        assert _counts(rows) == _counts(single), flags


def test_a_sweep_beyond_one_spec_files_cap_runs_from_python_and_from_a_folder(main, tmp_path):
    """A spec file holds at most 1 MiB (about 2,700 designs): 3,000 designs count as mappings
    from Python, and as a folder of files from the CLI."""
    import yaml

    import resfam.space

    (drawn,) = resfam.space.sample("resnext_a", 3000, seed=1)
    designs = {d.name: d.spec for d in drawn.designs}
    big = tmp_path / "all.yaml"
    big.write_text(yaml.safe_dump({"variants": designs}))
    assert big.stat().st_size > 1 << 20
    with pytest.raises(resfam.SpecError, match="larger than"):
        resfam.get_spec(f"{big}:resnext_a-0000")
    rows = resfam.compare(list(designs.values()), flops=True)
    assert [r["model"] for r in rows] == list(designs) and not any(r.get("error") for r in rows)
    one = resfam.get_spec(designs["resnext_a-0042"])
    from resfam.comparison.analytic import tally

    assert rows[42]["gmacs"] == round(tally(one, 224).macs / 1e9, 4)
    twins = resfam.compare([designs["resnext_a-0001"], designs["resnext_a-0001"]], flops=True)  # one name, two rows
    assert len(twins) == 2
    with pytest.raises(resfam.SpecError, match="stages"):  # checked before anything is measured
        resfam.compare([designs["resnext_a-0002"], {**designs["resnext_a-0003"], "stages": {"depth": [1]}}])
    folder = tmp_path / "sweep"
    folder.mkdir()
    names = list(designs)[:90]
    for part in range(3):
        chunk = {n: designs[n] for n in names[part * 30:(part + 1) * 30]}
        (folder / f"part{part}.yaml").write_text(yaml.safe_dump({"variants": chunk}))
    out = json.loads(main(str(folder), "--flops", "--format", "json", "--no-progress").stdout)["rows"]
    assert [r["model"] for r in out] == names
    (tmp_path / "empty").mkdir()
    assert "a folder without .yaml spec files" in main(str(tmp_path / "empty"), "--list", check_rc=2).stderr
