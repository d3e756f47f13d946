"""iResNet as the official code (iduta/iresnet) and the paper's Fig. 2 / Fig. 4 describe it."""
import torch
from torch import nn

import resfam


def test_stem_has_no_maxpool_and_layer1_downsamples():
    model = resfam.build("iresnet50")
    assert model.stem_names == ["conv1", "bn1", "act1"]
    assert model.layer1[0].conv2.stride == (2, 2) and model.layer1[0].conv1.stride == (1, 1)
    assert [i["reduction"] for i in model.feature_info] == [2, 4, 8, 16, 32]


def test_improved_projection_shortcut():
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        ds = getattr(resfam.build("iresnet50"), stage)[0].downsample
        assert isinstance(ds[0], nn.MaxPool2d) and ds[0].kernel_size == 3 and ds[0].stride == 2
        assert isinstance(ds[1], nn.Conv2d) and ds[1].kernel_size == (1, 1) and ds[1].stride == (1, 1)
        assert isinstance(ds[2], nn.BatchNorm2d)


def norms(block):
    return [n for n in ("bn0", "bn1", "bn2", "bn3", "bn_out") if getattr(block, n) is not None]


def test_resstage_start_middle_end_blocks():
    layer3 = resfam.build("iresnet50").layer3  # 6 blocks: start, 4 middle, end
    start, first_middle, middle, end = layer3[0], layer3[1], layer3[2], layer3[5]
    assert norms(start) == ["bn1", "bn2", "bn3"] and not start.placement.merge_act
    assert norms(first_middle) == ["bn1", "bn2"] and first_middle.placement.pre_act
    assert norms(middle) == ["bn0", "bn1", "bn2"] and not middle.placement.merge_act
    assert norms(end) == ["bn0", "bn1", "bn2", "bn_out"] and end.placement.merge_act


def test_block_outputs_follow_the_placement():
    model = resfam.build("iresnet50").eval()
    x = torch.randn(1, 64, 32, 32)
    with torch.no_grad():
        start_out = model.layer1[0](x)
        end_out = model.layer1[2](model.layer1[1](start_out))
    assert (start_out < 0).any()      # no ReLU after the start block's add
    assert (end_out >= 0).all()       # BN + ReLU after the end block's add
    # the first middle block leaves its input untouched for the identity shortcut
    y = start_out.clone()
    model.layer1[1](y)
    assert torch.equal(y, start_out)


def test_official_checkpoint_names_convert():
    """The official end block names its post-add norm bn3: it maps to bn_out."""
    model = resfam.build("iresnet50")
    official = {k.replace(".2.bn_out.", ".2.bn3."): v for k, v in model.state_dict().items()
                if k.startswith("layer1.")}
    converted = resfam.convert_state_dict(official, "iresnet50")
    assert "layer1.2.bn_out.weight" in converted and "layer1.2.bn3.weight" not in converted
