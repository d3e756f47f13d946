"""resfam-compare as a user runs it: a subprocess whose csv / json output is parsed back."""
import csv
import io
import re
import json
import subprocess
import sys
import warnings

import pytest
import timm
import torch
import torchvision

import resfam
from conftest import n_params

# this interpreter's resfam (a `resfam-compare` on PATH may belong to another installation)
CLI = [sys.executable, "-m", "resfam.comparison"]


def run(*args, check_rc=0):
    proc = subprocess.run(CLI + ["--no-progress", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == check_rc, proc.stderr
    return proc


def fvcore_conv_linear(model, size=224):
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        fca = FlopCountAnalysis(model.eval(), torch.randn(1, 3, size, size))
        fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        ops = fca.by_operator()
    return ops["conv"] + ops["linear"]


@pytest.fixture(scope="module")
def csv_rows():
    out = run("resnet50", "resnext50_32x4d", "wide_resnet50_2", "res2net50_26w_4s", "resnet20",
              "highway20", "plain20", "--flops", "--params", "--format", "csv").stdout
    return {r["model"]: r for r in csv.DictReader(io.StringIO(out))}


def test_csv_params_equal_the_models(csv_rows):
    for name, row in csv_rows.items():
        assert int(row["params"]) == n_params(resfam.build(name)), name


@pytest.mark.parametrize("name,reference", [
    ("resnet50", lambda: torchvision.models.resnet50()),
    ("resnext50_32x4d", lambda: torchvision.models.resnext50_32x4d()),
    ("wide_resnet50_2", lambda: torchvision.models.wide_resnet50_2()),
    ("res2net50_26w_4s", lambda: timm.create_model("res2net50_26w_4s")),
])
def test_csv_gmacs_equal_fvcore_on_the_reference_network(csv_rows, name, reference):
    macs = fvcore_conv_linear(reference())
    assert float(csv_rows[name]["gmacs"]) == round(macs / 1e9, 4)


def test_other_ops_nonzero_and_largest_where_gates_and_splits_are(csv_rows):
    ratio = {n: float(r["other_mops"]) * 1e6 / (float(r["gmacs"]) * 1e9) for n, r in csv_rows.items()}
    assert all(v > 0 for v in ratio.values()), ratio
    # Highway's sigmoid + muls + (1 - T) outweigh everything else; Res2Net's split adds and
    # pooled splits beat ResNet-50's; ResNet-20's residual adds beat plain-20's none
    assert max(ratio, key=ratio.get) == "highway20", ratio
    assert ratio["res2net50_26w_4s"] > ratio["resnet50"], ratio
    assert ratio["resnet20"] > ratio["plain20"], ratio


def test_json_rows_and_header(tmp_path):
    out = tmp_path / "r.json"
    proc = run("iresnet50", "res2net50_26w*", "--flops", "--params", "--format", "json", "--output", str(out),
               "--sort=-gmacs")
    doc = json.loads(out.read_text())
    assert doc["meta"]["torch"] == torch.__version__ and doc["meta"]["threads"] >= 1
    gmacs = [r["gmacs"] for r in doc["rows"]]
    assert gmacs == sorted(gmacs, reverse=True) and len(gmacs) == 4
    assert {r["model"] for r in doc["rows"]} >= {"iresnet50", "res2net50_26w_4s", "res2net50_26w_8s"}
    assert "torch" in proc.stderr and "wrote 4 rows" in proc.stderr
    paper = next(r for r in doc["rows"] if r["model"] == "iresnet50")
    assert paper["paper_params_m"] == 25.56 and paper["params_vs_paper_pct"] == pytest.approx(0, abs=0.05)


def test_table_fits_120_columns_with_numbers_right_aligned():
    out = run("resnet18", "resnet20", "highway20", "--flops", "--acts", "--latency", "--throughput",
              "--memory", "--paper", "--runs", "2", "--warmup", "0").stdout.splitlines()
    assert out[0].startswith("resfam-compare | torch") and "threads" in out[0]
    assert max(len(line) for line in out) <= 120, max(out, key=len)
    head = next(i for i, line in enumerate(out) if line.startswith("model "))
    rule, rows = out[head + 1], out[head + 2:head + 5]
    assert [r.split()[0] for r in rows] == ["resnet18", "resnet20", "highway20"]
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    cells = {out[head][i:j].strip(): [r[i:j] for r in rows] for i, j in spans}
    for col in ("params", "GMACs", "other", "acts", "ms", "img/s", "MiB"):  # right-aligned
        assert all(c.strip() and c == c.rjust(len(c)) and not c.endswith(" ") for c in cells[col]), (col, cells[col])
    assert cells["model"][0].startswith("resnet18")  # names left-aligned
    legend = " ".join(out[head + 5:])
    assert "GMACs: conv+linear multiply-accumulates" in legend and "MiB: peak memory" in legend
    paper = next(i for i, line in enumerate(out) if line.startswith("model ") and i > head)
    assert "top-1%" in out[paper] and "CIFAR-10" in out[paper + 3] and "+0.8" in out[paper + 2]


def test_measurement_columns():
    out = run("resnet20", "--latency", "--throughput", "--memory", "--train", "--runs", "3",
              "--warmup", "1", "--batch-size", "4", "--format", "json").stdout
    row = json.loads(out)["rows"][0]
    assert row["latency_ms"] > 0 and row["throughput"] > 0 and row["latency_iqr_ms"] >= 0
    # ResNet-20 at 4x3x32x32: the first stage alone holds 4*16*32*32 floats = 256 KiB per tensor
    assert row["peak_mem_mb"] > 0.25
    # a training step keeps every activation for backward, and gradients
    assert row["train_throughput"] > 0 and row["train_peak_mem_mb"] > 2 * row["peak_mem_mb"]


def test_unknown_model_and_flag_are_one_line_errors():
    proc = run("resnet5", "--flops", check_rc=2)
    assert proc.stderr.strip().count("\n") == 0 and "did you mean" in proc.stderr
    assert "'resnet50'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run("--family", "highwy", check_rc=2)
    assert proc.stderr.strip() == "resfam-compare: error: unknown family 'highwy': did you mean 'highway'?"
    proc = run("resnet18", "--flop", check_rc=2)
    assert "unrecognized arguments: --flop" in proc.stderr and "'--flops'" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_a_failing_model_marks_its_row_and_the_sweep_goes_on(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nextends: resnet18\nblock: {type: res2, scale: 1}\n")
    proc = run("resnet20", str(bad), "resnet18", "--params", "--format", "csv", check_rc=1)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in rows] == ["resnet20", str(bad), "resnet18"]
    assert "scale >= 2" in rows[1]["error"] and rows[0]["error"] == "" and rows[2]["params"]
    assert f"1 of 3 rows failed: {bad}" in proc.stderr


def test_plot_writes_a_real_png(tmp_path):
    png = tmp_path / "zoo.png"
    run("resnet20", "highway20", "plain20", "--plot", str(png), "--runs", "2", "--warmup", "1")
    from PIL import Image

    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (1100, 700)
        assert len(img.convert("RGB").getcolors(maxcolors=1 << 24)) > 50  # not a blank canvas


def test_python_api_returns_the_rows_the_cli_formats():
    rows = resfam.compare(["resnet20", "plain2*"], flops=True)
    assert [r["model"] for r in rows] == ["resnet20", "plain20"]
    assert rows[0]["params"] == n_params(resfam.build("resnet20")) and rows[0]["gmacs"] > 0


def test_columns_may_be_named_by_the_header_the_table_shows(capsys):
    """The table labels latency_ms 'ms' and gmacs 'GMACs'; --columns takes either name."""
    from resfam.comparison import cli

    assert cli.main(["resnet20", "--flops", "--columns", "model,GMACs,params", "--no-progress"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert header.split() == ["model", "GMACs", "params"]
    assert cli.main(["resnet20", "--columns", "model,nope", "--no-progress"]) == 2


@pytest.mark.parametrize("parser, option, default", [
    ("train_parser", "--epochs", "10"), ("train_parser", "--lr", "0.1"),
    ("probe_parser", "--seed", "0"), ("probe_parser", "--batch-size", "64")])
def test_help_shows_the_defaults(parser, option, default):
    from resfam.trainability import cli as tcli

    text = " ".join(getattr(tcli, parser)().format_help().split())
    assert re.search(rf"{re.escape(option)} \S+ .*?\(default: {re.escape(default)}\)", text)
