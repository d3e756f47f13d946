"""resfam's variants inside timm's own tools: create_model, features_only, the FeatureListNet
wrapper, data config, layer-wise learning-rate decay, and timm's scripts run through resfam."""
import subprocess
import sys
import textwrap

import pytest
import timm
import timm.optim
import torch
from timm.data import resolve_data_config
from timm.models import FeatureListNet

import resfam


def test_every_bundled_variant_is_registered():
    assert set(timm.list_models("resfam_*")) == {f"resfam_{n}" for n in resfam.list_models()}


@pytest.mark.parametrize("name", ["iresnet50", "res2net50_26w_4s", "resnetv2_50d", "highway20"])
def test_create_model_takes_timms_arguments(name):
    model = timm.create_model(f"resfam_{name}", num_classes=7, in_chans=1, drop_rate=0.1,
                              drop_path_rate=0.05, global_pool="avg", drop_block_rate=None)
    assert isinstance(model, resfam.ResFamNet) and model.spec.name == name
    size = model.spec.model.input_size
    assert model.eval()(torch.randn(1, 1, size, size)).shape == (1, 7)
    assert model.get_classifier().out_features == 7 and model.num_classes == 7
    cfg = resolve_data_config(model=model)
    assert cfg["input_size"] == (1, size, size) and cfg["crop_pct"] == 0.875


def test_features_only_follows_timms_conventions():
    """Same levels as timm's own resnet50 features_only (index 0 = the stride-2 stem)."""
    ours = timm.create_model("resfam_resnet50", features_only=True, out_indices=(0, 2, 4))
    theirs = timm.create_model("resnet50", features_only=True, out_indices=(0, 2, 4))
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    x = torch.randn(1, 3, 64, 64)
    assert [f.shape for f in ours.eval()(x)] == [f.shape for f in theirs.eval()(x)]


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "iresnet50", "resnetv2_50"])
def test_timms_feature_wrapper_over_a_resfam_model(name):
    """timm.models.FeatureListNet reads feature_info's module names and runs the children."""
    model = resfam.build(name).eval()
    wrapped = FeatureListNet(model, out_indices=(1, 2, 3, 4)).eval()
    features = resfam.build(name, features_only=True, out_indices=(1, 2, 3, 4)).eval()
    features.load_state_dict({k: v for k, v in model.state_dict().items()
                              if not k.startswith(("fc.", "norm."))})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(wrapped(x), features(x), strict=True):
            torch.testing.assert_close(a, b)
    assert wrapped.feature_info.channels() == features.feature_info.channels()


def test_layer_wise_learning_rate_decay_uses_the_group_matcher():
    model = timm.create_model("resfam_resnet18")
    opt = timm.optim.create_optimizer_v2(model, "sgd", lr=0.1, layer_decay=0.5)
    scales = sorted({g["lr_scale"] for g in opt.param_groups})
    assert len(scales) > 4 and scales[-1] == 1.0 and scales[0] < 0.01  # stem far below the head


def test_timm_only_pooling_is_refused_with_a_resfam_error():
    with pytest.raises(resfam.BuildArgumentError, match="global_pool"):
        timm.create_model("resfam_resnet18", global_pool="max")
    with pytest.raises(resfam.BuildArgumentError, match="did you mean 'drop_rate'"):
        timm.create_model("resfam_resnet18", drop_rat=0.1)


def test_timm_scripts_run_through_resfam(tmp_path):
    """A stand-in for timm's benchmark.py: it imports timm only, then builds --model by name."""
    script = tmp_path / "bench.py"
    script.write_text(textwrap.dedent("""
        import argparse, timm, torch
        p = argparse.ArgumentParser()
        p.add_argument("--model")
        args = p.parse_args()
        m = timm.create_model(args.model, num_classes=3).eval()
        print(args.model, tuple(m(torch.randn(1, 3, 32, 32)).shape))
    """))
    run = [sys.executable, "-m", "resfam.integrations.timm_registry", str(script), "--model", "resfam_resnet20"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "resfam_resnet20 (1, 3)"
    bare = subprocess.run([sys.executable, str(script), "--model", "resfam_resnet20"],
                          capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and "Unknown model" in bare.stderr  # why the runner exists
