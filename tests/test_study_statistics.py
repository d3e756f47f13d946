"""What a training study's numbers support (issue 26, section 4): confidence intervals and pair
tests against scipy and a hand computation, the environment recorded and a resume under another
refused, the final training error in eval mode, epochs.csv after every epoch, per-iteration
logging (resumed exactly), fine-tuning from the CLI, and curves.png's content."""
import csv
import json
import math
import subprocess
import sys

import pytest
import torch

import resfam
from conftest import stop_after_epoch_one
from resfam.trainability import stats
from resfam.trainability.train import train

pytest.importorskip("sklearn", reason="the digits data set ships with scikit-learn (resfam[data])")
scipy_stats = pytest.importorskip("scipy.stats")

QUICK = dict(data="digits", epochs=2, batch_size=64, lr=0.05)


def test_interval_is_students_t_by_hand():
    values = [2.0, 4.0, 9.0]
    mean, half = stats.interval(values)
    sd = math.sqrt(((2 - 5) ** 2 + (4 - 5) ** 2 + (9 - 5) ** 2) / 2)  # 3.606
    assert mean == 5.0
    assert half == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-6)  # t(0.975, 2) = 4.3027
    assert stats.interval([3.0]) == (3.0, None)


def _rows(model, errors):
    return [dict(model=model, seed=s, epoch=e, test_err=v + (10 if e == 1 else 0))
            for s, v in enumerate(errors) for e in (1, 2)]


def test_a_pair_paired_by_seed_equals_scipys_paired_t_test():
    a, b = [2.7, 3.1, 2.4], [3.2, 3.0, 3.5]
    r = stats.compare_pair(_rows("deep", a) + _rows("shallow", b), "deep", "shallow")
    ref = scipy_stats.ttest_rel(a, b)
    assert r["test"] == "paired t (by seed)" and r["df"] == 2
    assert r["t"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)
    diffs = [x - y for x, y in zip(a, b)]
    mean, half = stats.interval(diffs)
    assert r["diff"] == pytest.approx(mean) and (r["ci_low"], r["ci_high"]) == pytest.approx((mean - half, mean + half))
    assert r["p"] > 0.05 and r["ci_low"] < 0 < r["ci_high"]  # "trains better" is not supported
    assert "p = 0.3" in stats.describe(r) or "p = 0.2" in stats.describe(r)


def test_a_pair_with_other_seeds_is_welchs_t_test():
    rows = _rows("a", [1.0, 2.0, 3.0, 4.0]) + [dict(r, seed=r["seed"] + 10) for r in _rows("b", [5.0, 7.0, 9.0])]
    r = stats.compare_pair(rows, "a", "b")
    ref = scipy_stats.ttest_ind([1, 2, 3, 4], [5, 7, 9], equal_var=False)
    assert r["test"] == "Welch t" and r["t"] == pytest.approx(ref.statistic) and r["p"] == pytest.approx(ref.pvalue)
    assert r["diff"] == pytest.approx(2.5 - 7.0)
    one = stats.compare_pair(_rows("a", [1.0]) + _rows("b", [2.0]), "a", "b")
    assert one["test"] == "none" and "one seed" in one["why"]


def test_a_study_records_its_environment_and_refuses_another_on_resume(tmp_path):
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        train("mnist_resnet", out=str(tmp_path), on_epoch=stop_after_epoch_one, **QUICK)
    with open(tmp_path / "epochs.csv") as f:  # written after the first epoch, before the end
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]
    try:
        torch.set_num_threads(threads + 1)
        with pytest.raises(resfam.ResfamError, match=rf"threads {threads} \(now {threads + 1}\).*--threads {threads}"):
            train("mnist_resnet", out=str(tmp_path), resume=True, **QUICK)
    finally:
        torch.set_num_threads(threads)
    study = train("mnist_resnet", out=str(tmp_path), resume=True, **QUICK)
    env = json.loads((tmp_path / "summary.json").read_text())["meta"]["env"]
    assert env["threads"] == threads and env["torch"] == torch.__version__ and env["processes"] == 1
    first, last = study.epochs
    assert first["train_eval_err"] is None and 0 <= last["train_eval_err"] <= 100
    assert study.summary[0]["train_eval_err"] == last["train_eval_err"]


def test_iterations_are_logged_and_resume_exactly(tmp_path):
    opts = dict(QUICK, log_every=7)  # 23 steps per epoch: a window crosses the epoch boundary
    straight = train("mnist_resnet", out=str(tmp_path / "a"), **opts)
    steps = 1438 // 64 + 1
    assert [r["iteration"] for r in straight.iterations] == [*range(7, 2 * steps, 7), 2 * steps]
    with pytest.raises(KeyboardInterrupt):
        train("mnist_resnet", out=str(tmp_path / "b"), on_epoch=stop_after_epoch_one, **opts)
    resumed = train("mnist_resnet", out=str(tmp_path / "b"), resume=True, **opts)
    assert resumed.iterations == straight.iterations
    with open(tmp_path / "a" / "iterations.csv") as f:
        assert len(list(csv.DictReader(f))) == len(straight.iterations)


def test_summary_intervals_and_named_pairs_from_the_cli(tmp_path):
    out = tmp_path / "s"
    proc = subprocess.run([sys.executable, "-m", "resfam.trainability.cli", "mnist_resnet", "mnist_resnet_bn",
                           "--data", "digits", "--epochs", "1", "--seeds", "2", "--batch-size", "64",
                           "--lr", "0.05", "--out", str(out), "--test", "mnist_resnet_bn,mnist_resnet",
                           "--no-plot"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "summary.json").read_text())
    row = doc["rows"][0]
    with open(out / "epochs.csv") as f:
        errs = [float(r["test_err"]) for r in csv.DictReader(f) if r["model"] == "mnist_resnet"]
    assert row["test_err_ci95"] == pytest.approx(stats.interval(errs)[1])
    assert [t["key"] for t in doc["tests"]] == ["test_err", "train_eval_err"]
    assert doc["tests"][0]["test"] == "paired t (by seed)"
    assert "mnist_resnet_bn - mnist_resnet, final test_err:" in proc.stdout and "p = " in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "resfam.trainability.cli", "mnist_resnet", "--data",
                          "digits", "--out", str(tmp_path / "x"), "--test", "mnist_resnet,resnet50"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a model of this study" in bad.stderr and "Traceback" not in bad.stderr


def test_finetune_from_the_cli_keeps_the_frozen_backbone(tmp_path):
    source = resfam.build("resnet20", num_classes=100, in_chans=1)
    path = tmp_path / "pretrained.pth"
    torch.save(source.state_dict(), path)
    out = tmp_path / "ft"
    proc = subprocess.run([sys.executable, "-m", "resfam.trainability.cli", "resnet20", "--data", "digits",
                           "--epochs", "1", "--batch-size", "64", "--img-size", "16", "--pretrained", str(path),
                           "--finetune", "head", "--out", str(out), "--no-plot"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    record = torch.load(next((out / "runs").glob("*.pt")), weights_only=True)
    state = record["model_state"]
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(state[key], value), key  # frozen: exactly as loaded
    assert state["fc.weight"].shape == (10, 64)
    missing = subprocess.run([sys.executable, "-m", "resfam.trainability.cli", "resnet20", "--data", "digits",
                              "--finetune", "head", "--out", str(tmp_path / "y")], capture_output=True, text=True)
    assert missing.returncode == 2 and "finetune needs pretrained weights" in missing.stderr
    absent = subprocess.run([sys.executable, "-m", "resfam.trainability.cli", "resnet20", "--data", "digits",
                             "--pretrained", str(tmp_path / "nope.pth"), "--finetune", "head", "--out",
                             str(tmp_path / "z")], capture_output=True, text=True)
    assert absent.returncode == 2 and "nope.pth" in absent.stderr and "epoch" not in absent.stderr
    assert not list((tmp_path / "z").glob("runs/*.pt"))  # refused before the first run


def test_curves_show_markers_a_log_axis_and_which_line_is_which():
    from resfam.trainability.plot import curves_figure

    rows = [dict(model=m, seed=s, epoch=1, train_err=e + s, test_err=e + 1 + s)
            for m, e in (("plain56", 40.0), ("resnet56", 2.5)) for s in (0, 1)]
    fig = curves_figure(rows, "one epoch")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["plain56", "resnet56"]
    assert any("training error" in t for t in labels) and any("test error" in t for t in labels)
    assert all(line.get_marker() == "o" for line in ax.get_lines())  # one epoch: one visible point
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_seeds_that_all_differ_by_the_same_amount_are_not_called_significant():
    """The degradation study's iresnet56 - resnet56: -0.40 points on every seed (a 1,000-image
    test set quantises errors to 0.1): the t statistic is infinite and its p of 0 would be an
    artefact; with 3 seeds a sign test cannot go below 0.25."""
    r = stats.compare_pair(_rows("i", [2.1, 2.0, 2.1]) + _rows("r", [2.5, 2.4, 2.5]), "i", "r")
    assert r["test"] == "none" and r["diff"] == pytest.approx(-0.4)
    assert "differ by exactly -0.40" in r["why"] and "p = 0.25" in r["why"]
    assert "p = 0.25" in stats.describe(r)
