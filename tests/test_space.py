"""Design spaces (resfam.space): the statistics against hand computations and known
distributions, RegNet's width rule against timm's, sampling (valid, in band, reproducible,
bounded), the bundled spaces, and a whole study through the CLI, resumed after an interruption."""
from __future__ import annotations

import json
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import resfam
import resfam.space as rs
from resfam.space import stats
from resfam.space.cli import main

from conftest import n_params, stop_after_epoch_one


# --- statistics ---------------------------------------------------------------------------------

def test_edf_counts_errors_strictly_below_each_point():
    points, f = stats.edf([3, 1, 2, 2])
    assert points == [1, 2, 3] and f == [0.25, 0.75, 1.0]  # steps at the data: <= there
    assert stats.edf([3, 1, 2, 2], at=[1, 1.5, 2.5, 3.5])[1] == [0, 0.25, 0.75, 1.0]  # F(e) = mean 1[e_i < e]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=3, max_size=60), st.integers(1, 6))
def test_normalized_weights_sum_to_one_and_give_every_bin_the_same_weight(cx, bins):
    lo, hi = min(cx), max(cx)
    width = (hi - lo) / bins
    index = [0 if width == 0 else min(int((x - lo) / width), bins - 1) for x in cx]
    if len(set(index)) < bins:
        with pytest.raises(resfam.ArgumentError, match="holds no model; use fewer bins"):
            stats.normalized_weights(cx, bins)
        return
    w = stats.normalized_weights(cx, bins)
    assert sum(w) == pytest.approx(1.0)
    for j in range(bins):
        assert sum(wi for wi, i in zip(w, index) if i == j) == pytest.approx(1 / bins)


def test_normalized_weights_by_hand():
    # bins [0, 5) and [5, 10]: three models in the first, one in the second
    assert stats.normalized_weights([1, 2, 3, 9], 2, 0, 10) == [1 / 6, 1 / 6, 1 / 6, 1 / 2]


def test_ks_statistic_by_hand_and_as_scipy_computes_it():
    from scipy.stats import ks_2samp

    r = stats.ks_test([1, 2, 3], [2.5, 4])
    assert r["D"] == pytest.approx(2 / 3)  # at e in [2, 2.5): F_a = 2/3, F_b = 0
    rng = random.Random(1)
    a, b = [rng.gauss(0, 1) for _ in range(80)], [rng.gauss(0.5, 1) for _ in range(120)]
    ref = ks_2samp(a, b)
    r = stats.ks_test(a, b)
    assert (r["D"], r["p"]) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    # equal weights through the weighted path: the same D, a p-value from the same distribution
    w = stats.ks_test(a, b, [1 / 80] * 80, [1 / 120] * 120)
    assert w["D"] == pytest.approx(ref.statistic)
    assert w["p"] == pytest.approx(ref.pvalue, rel=0.5)
    same = stats.ks_test(a, a, [1 / 80] * 80, [1 / 80] * 80)
    assert same["D"] == 0.0 and same["p"] == pytest.approx(1.0)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=1, max_size=30), st.lists(st.integers(0, 8), min_size=1, max_size=30))
def test_the_weighted_ks_statistic_with_equal_weights_is_scipys_ties_included(a, b):
    from scipy.stats import ks_2samp

    d = stats.ks_test(a, b, [1 / len(a)] * len(a), [1 / len(b)] * len(b))["D"]
    assert d == pytest.approx(ks_2samp(a, b).statistic)


def test_bootstrap_finds_the_known_best_value_of_a_key():
    rng = random.Random(0)
    xs = [rng.randint(1, 20) for _ in range(400)]
    errors = [(x - 7) ** 2 + rng.gauss(0, 1) for x in xs]  # best near x = 7
    b = stats.bootstrap_best(xs, errors, reps=500)
    assert b["low"] <= 7 <= b["high"] and b["high"] - b["low"] <= 2 and b["mode"] == 7
    cat = stats.bootstrap_best(["a" if x == 7 else "b" for x in xs], errors, reps=200)
    assert cat["mode"] == "a" and cat["low"] is None and cat["share"] > 0.6


def test_random_search_matches_its_closed_form_and_simulation():
    assert stats.random_search([1, 2], [1, 2]) == [1.5, pytest.approx(1.25)]  # 1 * 3/4 + 2 * 1/4
    rng = random.Random(3)
    errors = [rng.uniform(0, 10) for _ in range(30)]
    weights = stats.normalized_weights([rng.uniform(0, 1) for _ in range(30)], 1)
    ks = [1, 4, 16]
    closed = stats.random_search(errors, ks, weights)
    for k, value in zip(ks, closed):
        sims = [min(rng.choices(errors, k=k)) for _ in range(20_000)]
        assert value == pytest.approx(statistics.fmean(sims), rel=0.03)
    assert closed == sorted(closed, reverse=True)  # more samples, a lower expected minimum


# --- RegNet's widths ----------------------------------------------------------------------------

def test_regnet_widths_as_the_paper_and_timm_generate_them():
    import timm.models.regnet as tr
    import torch

    from resfam.spec.regnet import compatible_widths, regnet_stages, regnet_widths

    # RegNetX-200MF (Radosavovic et al. 2020, Appendix: w0 24, wa 36.44, wm 2.49, d 13)
    assert regnet_stages(24, 36.44, 2.49, 13) == ([1, 1, 4, 7], [24, 56, 152, 368])
    checked = 0
    for name, c in tr.model_cfgs.items():
        widths, n, _ = tr.generate_regnet(c.wa, c.w0, c.wm, c.depth, c.group_size)
        assert regnet_widths(c.w0, c.wa, c.wm, c.depth) == widths, name
        if c.bottle_ratio > 1:  # RegNetZ's inverted bottleneck: resfam's expansion is whole
            continue
        ws, ds = torch.unique(torch.tensor(widths), return_counts=True)
        assert regnet_stages(c.w0, c.wa, c.wm, c.depth) == (ds.tolist(), ws.tolist()), name
        expected = tr.adjust_widths_groups_comp(ws.tolist(), [c.bottle_ratio] * n, [c.group_size] * n,
                                                c.group_min_ratio)
        got = compatible_widths(ws.tolist(), [round(1 / c.bottle_ratio)] * n, [c.group_size] * n,
                                c.group_min_ratio)
        assert got == tuple(expected), name
        checked += 1
    assert checked >= 30
    with pytest.raises(ValueError, match="wm"):
        regnet_widths(24, 36, 1.0, 13)


def test_group_width_builds_the_grouped_3x3_regnet_describes():
    spec = resfam.get_spec(dict(name="x", family="t", stem=dict(type="conv3", width=32),
                                stages=dict(depth=[1, 2], width=[48, 96], stride=[2, 2]),
                                block=dict(type="bottleneck", expansion=[1, 2], group_width=[16, 24])))
    m = resfam.build(spec)
    assert m.stem_stride == 2 if hasattr(m, "stem_stride") else True
    assert (m.layer1[0].conv2.groups, m.layer2[0].conv2.groups) == (3, 2)  # 48 / 16, 96 / 2 / 24
    assert m.layer2[0].conv2.in_channels == 48
    from resfam.comparison.analytic import tally

    assert tally(spec).params == n_params(m)
    with pytest.raises(resfam.SpecError, match="group_width.*not divisible by group_width=7"):
        resfam.get_spec(dict(spec.raw, block=dict(type="bottleneck", group_width=7)))
    with pytest.raises(resfam.SpecError, match="group_width sets the groups"):
        resfam.get_spec(dict(spec.raw, block=dict(type="bottleneck", group_width=8, groups=2)))


# --- sampling -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", rs.list_spaces())
def test_every_bundled_space_samples_valid_designs_inside_its_band(name):
    from resfam.comparison.analytic import tally

    space = rs.load(name)
    assert space.d.paper and space.d.description
    (s,) = rs.sample(space, 4, seed=1)
    band = space.d.constraints
    assert len(s.designs) == 4 and 0 < s.acceptance <= 1
    for d in s.designs:
        if band.gmacs:
            assert band.gmacs[0] <= d.gmacs <= band.gmacs[1]
        for key in band.nondecreasing:
            seq = d.spec["stages"][key.split(".")[1]]
            assert seq == sorted(seq)
        assert d.spec["family"] == name
    spec = resfam.get_spec(s.designs[0].spec)  # analytic == the built network
    assert tally(spec).params == round(s.designs[0].params * 1e6) == n_params(resfam.build(spec))


def test_a_sample_counts_as_fvcore_counts_the_built_network():
    from fvcore.nn import FlopCountAnalysis
    import torch

    for name in ("anynetx_a", "res2net", "highway"):
        d = rs.sample(name, 1, seed=2)[0].designs[0]
        spec = resfam.get_spec(d.spec)
        m = resfam.build(spec).eval()
        side = spec.input_size
        f = FlopCountAnalysis(m, torch.randn(1, 3, side, side))
        f.unsupported_ops_warnings(False)
        f.uncalled_modules_warnings(False)
        ops = f.by_operator()
        assert ops.get("conv", 0) + ops.get("linear", 0) == round(d.gmacs * 1e9), name


def test_sampling_is_reproducible_by_seed():
    a = rs.sample(["resnet", "anynetx_c"], 5, seed=7)
    b = rs.sample(["resnet", "anynetx_c"], 5, seed=7)
    c = rs.sample(["resnet", "anynetx_c"], 5, seed=8)
    rows = lambda s: [d.row() for x in s for d in x.designs]  # noqa: E731
    assert rows(a) == rows(b) and rows(a) != rows(c)
    assert [x.draws for x in a] == [x.draws for x in b]


def test_an_impossible_band_fails_after_a_bounded_number_of_draws_saying_where_draws_landed():
    with pytest.raises(resfam.SpecError) as e:
        rs.sample("resnet", 3, band={"gmacs": [50, 60]})
    text = str(e.value)
    assert "0 of 1,600 draws fell in the band (50-60 GMACs)" in text and "the draws reached gmacs" in text
    assert "space resnet" in text and "widen the band" in text
    with pytest.raises(resfam.SpecError, match="of 40 draws"):
        rs.sample("resnet", 3, max_draws=40)


def _space(**over):
    raw = dict(name="mine", base=dict(stem=dict(type="cifar", width=16), stages=dict(stride=[1, 2]),
                                      block=dict(type="basic"), input_size=32),
               keys={"stages.depth": {"int": [1, 3], "per_stage": True},
                     "stages.width": {"choice": [16, 32], "per_stage": True}})
    raw.update(over)
    return raw


@pytest.mark.parametrize("over, key, words", [
    (dict(keys={"stages.depth": {"int": [1, 3], "choice": [1]}}), "keys.stages.depth",
     "exactly one of choice, int"),
    (dict(keys={"stages.depth": {"itn": [1, 3]}}), "keys.stages.depth.itn", "did you mean 'int'"),
    (dict(keys={"stages.depth": {"int": [3, 1]}}), "keys.stages.depth", "is not a range"),
    (dict(constraints={"gmacs": [0.4, 0.3]}), "constraints", "is not a band"),
    (dict(rules=[{"rule": "doubling", "width": 16}]), "keys.stages.width", "both drawn and derived"),
    (dict(rules=[{"rule": "fancy"}]), "rules.0", "fancy"),
    (dict(rules=[{"rule": "doubling", "width": 16, "facter": 2}]), "rules.0.doubling.facter",
     "did you mean 'factor'"),
    # a reachable invalid network, found by the load check's corners: iResNet needs 2 blocks a stage
    (dict(base=dict(stem=dict(type="cifar", width=16), stages=dict(stride=[1, 2]), order="iresnet",
                    block=dict(type="bottleneck"))), "stages.depth", "needs a start and an end block"),
    (dict(keys={"stages.depth": {"int": [1, 3], "per_stage": True},
                "block.base_width": {"choice": [64, 10]}, "stages.width": {"choice": [64], "per_stage": True}},
          base=dict(stem=dict(type="cifar", width=16), stages=dict(stride=[1, 2]), block=dict(type="bottleneck"))),
     "block.base_width", "a draw gives an invalid network"),
])
def test_a_bad_space_fails_at_load_naming_file_space_and_key(over, key, words):
    with pytest.raises(resfam.SpecError) as e:
        rs.load(_space(**over))
    assert e.value.key.startswith(key) and words in str(e.value) and "space mine" in str(e.value)


def test_unknown_space_names_the_close_one():
    with pytest.raises(resfam.SpecError, match="did you mean 'anynetx_a'"):
        rs.load("anynet_a")


# --- a whole study ------------------------------------------------------------------------------

def _study(tmp_path, name="study", n=2):
    out = tmp_path / name
    assert main(["sample", "vanilla", "resnet", "-n", str(n), "--gmacs", "0.001,0.003", "--img-size", "12",
                 "--out", str(out)]) == 0
    return out


TRAIN = ["--data", "digits", "--epochs", "2", "--batch-size", "64"]


def test_a_study_trains_compares_and_resumes_exactly(tmp_path, capsys, monkeypatch):
    out = _study(tmp_path)
    manifest = json.loads((out / "space-study.json").read_text())
    assert [s["designs"] for s in manifest["spaces"]] == [2, 2]
    assert resfam.get_spec(f"{out}/designs.yaml:resnet-0001").input_size == 12  # trains at its band's side
    # interrupted after the first epoch of the first design, as Ctrl-C would
    with pytest.raises(KeyboardInterrupt):
        rs.train(str(out), data="digits", epochs=2, batch_size=64, on_epoch=stop_after_epoch_one)
    assert main(["train", str(out), *TRAIN]) == 2  # runs exist: resume, or another folder
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(out), *TRAIN, "--resume"]) == 0
    resumed = json.loads((out / "population.json").read_text())["rows"]
    fresh = _study(tmp_path, "fresh")
    assert main(["train", str(fresh), *TRAIN]) == 0
    clean = json.loads((fresh / "population.json").read_text())["rows"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(clean) and len(clean) == 4
    assert all(0 <= r["best_test_err"] <= 100 and r["space"] in ("vanilla", "resnet") for r in clean)
    capsys.readouterr()
    report = tmp_path / "cmp.json"
    assert main(["compare", str(out), "--bins", "1", "--output", str(report), "--plot", str(tmp_path / "c.png")]) == 0
    doc = json.loads(report.read_text())
    assert [s["space"] for s in doc["spaces"]] == ["vanilla", "resnet"]
    (pair,) = doc["pairs"]
    errors = {s: [r["best_test_err"] for r in clean if r["space"] == s] for s in ("vanilla", "resnet")}
    from scipy.stats import ks_2samp

    assert pair["D_plain"] == pytest.approx(ks_2samp(errors["vanilla"], errors["resnet"]).statistic)
    assert doc["spaces"][0]["best"] == min(errors["vanilla"])
    assert any(k["key"] == "blocks" for k in doc["keys"])
    assert (tmp_path / "c.png").stat().st_size > 10_000
    assert main(["compare", str(out), "--format", "csv", "--bins", "0"]) == 0
    assert capsys.readouterr().out.startswith("table,")


@pytest.mark.slow
def test_torchrun_deals_a_populations_runs_out_to_processes(tmp_path):
    """``torchrun -m resfam.space train --distribute runs``: each design trained once, by one of
    the two processes, each run the single-process run (one thread both ways)."""
    import os
    import subprocess
    import sys

    out = _study(tmp_path, n=1)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           "2", "-m", "resfam.space", "train", str(out), "--data", "digits", "--epochs", "1",
                           "--batch-size", "64", "--distribute", "runs", "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "population.json").read_text())["rows"]
    assert sorted(r["model"] for r in rows) == ["resnet-0000", "vanilla-0000"]
    assert json.loads((out / "summary.json").read_text())["meta"]["processes"] == 2
    single = _study(tmp_path, "single", n=1)
    proc = subprocess.run([sys.executable, "-m", "resfam.space", "train", str(single), "--data", "digits",
                           "--epochs", "1", "--batch-size", "64", "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    alone = {r["model"]: r for r in json.loads((single / "population.json").read_text())["rows"]}
    for r in rows:
        for key in ("train_err", "test_err", "train_eval_err"):
            assert r[key] == pytest.approx(alone[r["model"]][key], abs=1e-9), (r["model"], key)


@pytest.mark.parametrize("argv, words", [
    (["sample", "resnet", "--gmacs", "1", "--out", "x"], "give LOW,HIGH"),
    (["sample", "resnt", "--out", "x"], "did you mean 'resnet'"),
    (["sample", "resnet", "-n", "2", "--gmacs", "50,60", "--out", "x"], "0 of 1,400 draws"),
    (["compare", "nowhere"], "no trained population"),
    (["compare", "study", "--key", "stages.dpth.0"], "did you mean 'stages.depth.0'"),
    (["train", "nowhere"], "not a design-space study"),
    (["sampel"], "invalid choice"),
])
def test_cli_errors_are_one_line_and_exit_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "study" in argv:  # a trained population to compare
        (tmp_path / "study").mkdir()
        row = {"model": "resnet-0000", "space": "resnet", "gmacs": 0.1, "best_test_err": 5.0,
               "stages.depth.0": 2}
        (tmp_path / "study" / "population.json").write_text(json.dumps({"meta": {}, "rows": [row]}))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors, as resfam-compare's
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) <= 2 and "Traceback" not in err


def test_list_names_every_bundled_space_with_its_paper(capsys):
    assert main(["list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["space"] for r in rows] == rs.list_spaces()
    assert {"vanilla", "resnet", "resnext_a", "resnext_b", "regnetx", "regnety", "res2net", "iresnet",
            "highway", "preact", "wide"} | {f"anynetx_{x}" for x in "abcde"} <= set(rs.list_spaces())
    assert all(r["paper"] for r in rows)
