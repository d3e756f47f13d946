"""Export paths, one variant of each family: torch.fx, torchvision's feature extractor,
torch.jit.trace and torch.export (ONNX, run by ONNX Runtime and OpenVINO: tests/test_engines.py)."""
import pytest
import torch
from torchvision.models.feature_extraction import create_feature_extractor

import resfam

FAMILIES = ["resnet20", "plain20", "preact_resnet164", "wrn_16_8", "resnext50_32x4d",
            "res2net50_26w_4s", "iresnet50", "highway20", "res2net50_iresnet"]


def model_and_input(name):
    size = 32 if resfam.get_spec(name).input_size == 32 else 64
    return randomize(resfam.build(name).eval()), torch.randn(2, 3, size, size)


def randomize(model):
    from conftest import randomize_norms

    return randomize_norms(model)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace.*is deprecated:FutureWarning")
@pytest.mark.parametrize("name", FAMILIES)
def test_fx_jit_and_torch_export(name):
    model, x = model_and_input(name)
    with torch.no_grad():
        expected = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), expected)
        torch.testing.assert_close(torch.jit.trace(model, x)(x), expected)
        stages = {n: n for n in model.stage_names}
        feats = create_feature_extractor(model, stages)(x)
        assert [f.shape[1] for f in feats.values()] == model.feature_info.channels()[1:]
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), expected)


# one variant per kind of block: units (basic, bottleneck, res2, selective kernel, split
# attention), placements (post, pre, iResNet's start / middle / end), merges (add, gate, none),
# attention (se, eca, gc, with a gain), anti-aliasing (avg, blur), norm-activation layers,
# act_last, dropout, normaliser-free blocks (alpha, beta, scaled weight standardisation)
BLOCK_KINDS = ["resnet20", "resnet50", "res2net50_26w_4s", "skresnet18", "resnest50d",
               "resnest50d_4s2x40d", "preact_resnet164", "iresnet50", "highway20", "plain20",
               "seresnet50", "ecaresnet50d", "resnetaa50d", "resnetblur50", "resnetv2_50d_evos",
               "legacy_seresnet18", "wrn_16_8", "nf_seresnet26", "eca_nfnet_l0", "dm_nfnet_f0",
               "gcresnext26ts"]


@pytest.mark.filterwarnings("ignore:`torch.jit.script.*is deprecated:FutureWarning")
@pytest.mark.parametrize("name", BLOCK_KINDS)
def test_every_block_compiles_with_torchscript(name):
    """ResidualBlock's forward is plain control flow over its submodules, so TorchScript
    compiles every block and the compiled block computes what the eager one does."""
    from resfam.primitives.blocks import ResidualBlock

    model, x = model_and_input(name)
    with torch.no_grad():
        for stem in model.stem_names:
            x = getattr(model, stem)(x)
        for stage in model.stage_names[:2]:  # later stages repeat the same kinds of block
            blocks = [b for b in getattr(model, stage) if isinstance(b, ResidualBlock)]
            roles = {0, 1, len(blocks) - 1}  # projection, identity, a stage's end (iResNet)
            for i, block in enumerate(getattr(model, stage)):
                if isinstance(block, ResidualBlock) and blocks.index(block) in roles:
                    torch.testing.assert_close(torch.jit.script(block)(x), block(x))
                x = block(x)


# ONNX: tests/test_engines.py runs every family through ONNX Runtime and OpenVINO (resfam.deploy)
