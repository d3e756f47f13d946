"""Export paths, one variant of each family: torch.fx, torchvision's feature extractor,
torch.jit.trace, torch.export and ONNX (run with onnxruntime)."""
import numpy as np
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


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_matches_onnxruntime(tmp_path, name):
    ort = pytest.importorskip("onnxruntime", reason="ONNX export is the optional 'onnx' extra")
    model, x = model_and_input(name)
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4, rtol=1e-4)
