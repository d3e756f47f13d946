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


def forget_freed_builtins():
    """Drop the ids in TorchScript's table of builtin ops that no live callable holds.

    torch.jit keys that table by ``id(fn)``; ops that ONNX export and inductor re-register
    (``quantized_decomposed::*``, seen after tests/test_engines.py in the same worker) leave the
    ids of freed objects behind, and a new object at such an address, a conv's padding list, is
    then compiled as a builtin: "builtin cannot be used as a value" (torch 2.14, a flaky CI
    failure). Not resfam's code: the ids are torch's."""
    import gc

    from torch.jit import _builtins

    table = _builtins._get_builtin_table()
    live = {id(o): o for o in gc.get_objects()}
    live.update((id(fn), fn) for fn, _ in _builtins._builtin_ops)
    for key in [k for k in table if not callable(live.get(k))]:
        del table[key]


@pytest.mark.filterwarnings("ignore:`torch.jit.script.*is deprecated:FutureWarning")
def test_forgetting_freed_builtins_lets_a_colliding_list_compile():
    """The workaround above, proved on the collision itself: a conv whose padding list sits at
    an id the table holds fails to compile, and compiles once the stale id is dropped."""
    from torch.jit import _builtins

    conv = torch.nn.Conv2d(2, 2, 3, padding=1)
    _builtins._register_builtin(conv._reversed_padding_repeated_twice, "aten::relu")
    with pytest.raises(RuntimeError, match="builtin cannot be used as a value"):
        torch.jit.script(conv)
    forget_freed_builtins()
    x = torch.randn(1, 2, 5, 5)
    torch.testing.assert_close(torch.jit.script(conv)(x), conv(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script.*is deprecated:FutureWarning")
@pytest.mark.parametrize("name", BLOCK_KINDS)
def test_every_block_compiles_with_torchscript(name):
    """ResidualBlock's forward is plain control flow over its submodules, so TorchScript
    compiles every block and the compiled block computes what the eager one does."""
    from resfam.primitives.blocks import ResidualBlock

    model, x = model_and_input(name)
    forget_freed_builtins()
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
