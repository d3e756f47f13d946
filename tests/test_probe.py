"""resfam.probe / resfam-probe: signal propagation at initialisation (Brock et al. 2021).

The statistics are checked against a hand computation that runs the modules one by one (no
hooks), and the shape of the curves against what the papers predict: an unnormalised residual
net doubles its variance every block (He init keeps each branch at the input's scale, and the
skip adds it), an unnormalised plain net loses it geometrically, a normalised pre-activation net
grows it *linearly* (each branch adds about one unit: Brock et al. 2021, Sec. 3).
"""
import json
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

import resfam
from resfam.trainability.probe import channel_stats, probe

TWO_BLOCKS = dict(name="two_blocks", family="test", input_size=16,
                  stem={"type": "cifar", "width": 8},
                  stages={"depth": [2], "width": [8], "stride": [1]},
                  block={"type": "basic"}, shortcut={"type": "conv1x1"}, order="post",
                  head={"num_classes": 5})


def _cifar(depth_per_stage: int, order: str = "post", **keys) -> dict:
    pre = order == "pre"
    return dict(name=f"net{order}", family="test", input_size=16,
                stem={"type": "preact_cifar" if pre else "cifar", "width": 16},
                stages={"depth": [depth_per_stage] * 2, "width": [16, 32], "stride": [1, 2]},
                block={"type": "basic"}, shortcut={"type": "zero_pad"}, order=order,
                head={"num_classes": 10, "norm": pre}, **keys)


def _by_stage(result, stage: int, key: str = "avg_var") -> list[float]:
    return [r[key] for r in result.blocks if r["stage"] == stage]


def test_statistics_equal_a_hand_computation_on_two_blocks():
    result = probe(TWO_BLOCKS, batch_size=6, seed=3)
    torch.manual_seed(3)
    model = resfam.build(TWO_BLOCKS).train()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, 16, 16, generator=gen)
    with torch.no_grad():
        h = model.act1(model.bn1(model.conv1(x)))
        expected = []
        for block in model.layer1:  # post order: conv-BN-ReLU-conv-BN, add, ReLU
            branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(h)))))
            h = torch.relu(branch + h)
            mean = h.double().mean(dim=(0, 2, 3))
            var = ((h.double() - mean[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
            b = branch.double()
            b_var = ((b - b.mean(dim=(0, 2, 3))[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))
            expected.append((float((mean ** 2).mean()), float(var.mean()), float(b_var.mean())))
    assert len(result.blocks) == 2
    for row, (sq_mean, var, b_var) in zip(result.blocks, expected):
        assert row["avg_sq_mean"] == pytest.approx(sq_mean, rel=1e-9)
        assert row["avg_var"] == pytest.approx(var, rel=1e-9)
        assert row["branch_var"] == pytest.approx(b_var, rel=1e-9)
        assert row["gate_mean"] is None
    # a BN-ReLU... branch ends in BN: unit variance at init, whatever the input
    assert [r["branch_var"] for r in result.blocks] == pytest.approx([1.0, 1.0], abs=1e-3)


def test_gradient_norms_equal_autograd_on_the_same_network():
    result = probe(TWO_BLOCKS, batch_size=6, seed=3)
    torch.manual_seed(3)
    model = resfam.build(TWO_BLOCKS).train()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 3, 16, 16, generator=gen).requires_grad_(True)
    labels = torch.randint(5, (6,), generator=gen)
    loss = nn.functional.cross_entropy(model(x), labels)
    stage = list(model.layer1.parameters())
    grads = torch.autograd.grad(loss, [x] + stage)
    norms = {r["part"]: r for r in result.grads}
    assert set(norms) == {"stem", "layer1", "head", "input"}
    assert norms["input"]["grad_norm"] == pytest.approx(float(grads[0].norm()), rel=1e-5)
    layer = torch.cat([g.flatten() for g in grads[1:]])
    assert norms["layer1"]["grad_norm"] == pytest.approx(float(layer.norm()), rel=1e-5)
    assert norms["layer1"]["grad_rms"] == pytest.approx(float(layer.norm() / layer.numel() ** 0.5), rel=1e-5)


def _ratios(values: list[float]) -> list[float]:
    return [b / a for a, b in zip(values, values[1:])]


def _per_block_factor(result) -> float:
    """The geometric mean of var[k+1] / var[k] over the whole net, transitions included."""
    var = [r["avg_var"] for r in result.blocks]
    return (var[-1] / var[0]) ** (1 / (len(var) - 1))


def test_unnormalised_residual_variance_grows_geometrically_plain_vanishes():
    residual = probe(_cifar(9), batch_size=32, norm_layer="none")
    plain = probe(dict(_cifar(9), shortcut={"type": "none"}, merge={"type": "none"}),
                  batch_size=32, norm_layer="none")
    # x_{l+1} = x_l + F(x_l) with Var F ~ Var x (He init): about x2 per block
    factor = _per_block_factor(residual)
    assert factor > 1.6 and factor < 2.6, factor
    # y = relu(F(x)) without a skip: a fixed fraction of the scale lost per block
    assert _per_block_factor(plain) < 0.9
    assert plain.blocks[-1]["avg_var"] < 0.2 * plain.blocks[0]["avg_var"]


def test_normalised_preactivation_variance_grows_linearly():
    result = probe(_cifar(8, order="pre"), batch_size=64)
    var = _by_stage(result, 1)
    steps = [b - a for a, b in zip(var, var[1:])]
    # each block adds one branch of about constant variance: equal steps (a line), not a factor
    assert min(steps) > 0
    assert max(steps) / min(steps) < 2.0
    assert _ratios(var)[-1] < _ratios(var)[0]  # the relative growth falls: not geometric
    # a transition block re-normalises: the next stage starts lower than this one ends
    assert _by_stage(result, 2)[0] < var[-1]


def test_highway_gate_mean_is_sigmoid_of_its_bias():
    spec = _cifar(4, merge={"type": "gate", "bias_init": -1.0})
    result = probe(spec, batch_size=32, norm_layer="none")
    gates = [r["gate_mean"] for r in result.blocks]
    assert all(g is not None for g in gates)
    # E[sigmoid(b + z)] for a zero-mean z: sigmoid(b) to first order (He-init z is small here)
    assert sum(gates) / len(gates) == pytest.approx(1 / (1 + math.e), rel=0.15)
    model = resfam.build(spec, norm_layer="none")
    for block in model.layer1:  # with the gate's weights zeroed it is exactly sigmoid(b)
        nn.init.zeros_(block.gate.conv.weight)
    exact = probe(model, batch_size=4, img_size=16).blocks[0]["gate_mean"]
    assert exact == pytest.approx(1 / (1 + math.e), rel=1e-7)  # the conv runs in float32


def test_probe_is_seeded_and_checks_its_arguments():
    a, b = probe("resnet20", batch_size=4), probe("resnet20", batch_size=4)
    assert a.blocks == b.blocks and a.grads == b.grads
    assert probe("resnet20", batch_size=4, seed=1).blocks != a.blocks
    with pytest.raises(resfam.ArgumentError, match="batch_size"):
        probe("resnet20", batch_size=1)
    with pytest.raises(resfam.UnknownModelError):
        probe("resnet2O")


def test_channel_stats_of_a_known_tensor():
    x = torch.zeros(2, 2, 1, 1)
    x[:, 0] = torch.tensor([1.0, 3.0]).view(2, 1, 1)  # channel 0: mean 2, variance 1
    x[:, 1] = 4.0  # channel 1: mean 4, variance 0
    assert channel_stats(x) == (pytest.approx((4 + 16) / 2), pytest.approx(0.5))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from resfam.trainability.cli import "
                           "probe_main; sys.exit(probe_main(sys.argv[1:]))", *args],
                          capture_output=True, text=True)


def test_cli_json_parses_back_and_plots(tmp_path):
    png = tmp_path / "spp.png"
    proc = _cli("plain20", "resnet20", "--batch-size", "8", "--format", "json", "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [r["model"] for r in doc["blocks"]] == ["plain20"] * 9 + ["resnet20"] * 9
    assert [r["part"] for r in doc["grads"]][:6] == ["stem", "layer1", "layer2", "layer3", "head", "input"]
    assert doc["meta"]["batch_size"] == 8
    assert png.stat().st_size > 10_000


def test_cli_table_csv_and_errors():
    proc = _cli("resnet20", "--batch-size", "4", "--norm", "none")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("resfam-probe | torch") and "branch var" in proc.stdout
    parts = ["stem", "layer1", "layer2", "layer3", "head", "input"]
    assert sum(line.startswith("resnet20 ") for line in lines) == 9 + len(parts)  # blocks, parts
    assert [line.split()[1] for line in lines if line.startswith("resnet20 ")][9:] == parts
    csv = _cli("resnet20", "--batch-size", "4", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("kind,model,block") and len(csv) == 1 + 9 + len(parts)
    bad = _cli("resnet2O")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert _cli("resnet20", "--batch-size", "1").returncode == 2


def test_the_probe_figure_shows_branches_only_where_they_exist_and_says_how_it_was_measured():
    """A plain net has no residual branch: its branch panel has no line and says why; a squared
    mean that dips to ~0 (iResNet's end blocks) no longer stretches the axis over 15 decades."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from resfam.trainability.plot import CLIP, floor_of, probe_figure, probe_title

    plain = probe(["plain20"], batch_size=8, img_size=32)
    assert all(r["branch_var"] is None for r in plain.blocks)
    fig = probe_figure(plain.blocks, plain.grads, plain.meta)
    assert not fig.axes[2].get_lines() and "no residual branch" in fig.axes[2].texts[0].get_text()
    assert "norms as each spec has them" in fig._suptitle.get_text()
    plt.close(fig)
    assert "norm_layer='none'" in probe_title(probe(["resnet20"], batch_size=4, img_size=32,
                                                    norm_layer="none").meta)
    mixed = probe(["resnet20", "iresnet50"], batch_size=8, img_size=32)
    floor = CLIP * min(floor_of(mixed.blocks, "avg_sq_mean"))
    assert min(r["avg_sq_mean"] for r in mixed.blocks) < floor  # iResNet's dips: the clip's case
    fig = probe_figure(mixed.blocks, mixed.grads, mixed.meta)
    assert len(fig.axes[2].get_lines()) == 2
    assert fig.axes[0].get_ylim()[0] == pytest.approx(floor)
    plt.close(fig)
    falling = probe(["plain56", "resnet20"], batch_size=8, img_size=32, norm_layer="none")
    fig = probe_figure(falling.blocks, falling.grads, falling.meta)  # decades of trend: unclipped
    assert fig.axes[1].get_ylim()[0] <= min(r["avg_var"] for r in falling.blocks)
    ticks = [t.get_text() for t in fig.axes[3].get_xticklabels()]
    assert ticks[0] == "stem" and ticks[-2:] == ["head", "input"]  # one order for every model
    plt.close(fig)
