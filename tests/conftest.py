import os
import warnings

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: one core each, and for the processes
    os.environ["OMP_NUM_THREADS"] = "1"    # a test starts (oversubscribed OpenMP threads slow
    torch.set_num_threads(1)               # both workers down up to 10x on two cores)
from hypothesis import HealthCheck, settings

# property-based tests (tests/test_fuzz.py): a small, derandomised budget unless a run asks for
# another profile with --hypothesis-profile (resfam-long: ~7,500 cases, a few minutes)
settings.register_profile("resfam-ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("resfam-long", max_examples=1500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("resfam-ci")

warnings.filterwarnings("ignore", category=FutureWarning, module="fvcore")


def randomize_norms(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms (GroupNorm and norm-activation
    layers: their per-channel parameters),
    so a norm mapped to the wrong place changes the output (random-init BN is the identity in
    eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, torch.nn.GroupNorm) and m.affine:
                n = m.num_channels
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            elif isinstance(m, torch.nn.Conv2d) and isinstance(getattr(m, "gain", None), torch.Tensor):
                # scaled weight standardisation's learned gain (NF nets start the last conv of
                # each branch at gain 0: the branch would add nothing) and the conv's bias
                m.gain.copy_(torch.rand(m.gain.shape, generator=g) * 0.5 + 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif not isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                # norm-activation layers (EvoNorm's weight / bias / v, FRN's tau): every
                # per-channel parameter, scales near 1 and offsets near 0
                for name, p in m.named_parameters(recurse=False):
                    if p.dim() == 1:
                        scale = name in ("weight", "v")
                        p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.5 if scale
                                else torch.randn(p.shape, generator=g) * 0.1)
        for p in model.parameters():  # a zero-initialised weight (GCNet's last 1x1) or gain
            if p.dim() != 1 and not p.any():  # (SkipInit's) hides what it multiplies
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 if p.dim() else
                        torch.rand((), generator=g) * 0.5 + 0.5)
    return model


# the bundled variants too large to allocate twice in a test (194M and 468M parameters): tests
# that only need shapes build them on the meta device (shapes, no storage, no arithmetic)
# over ~190M parameters: their parity is checked on parameter shapes (the meta device)
GIANTS = frozenset({"resnext101_32x16d", "resnext101_32x32d", "resnetv2_50x3_bit",
                    "resnetv2_101x3_bit", "resnetv2_152x2_bit", "resnetv2_152x4_bit",
                    "regnety_640", "regnety_1280", "regnety_2560", "regnet_y_128gf",
                    "nfnet_f2", "nfnet_f3", "nfnet_f4", "nfnet_f5", "nfnet_f6", "nfnet_f7",
                    "dm_nfnet_f2", "dm_nfnet_f3", "dm_nfnet_f4", "dm_nfnet_f5", "dm_nfnet_f6",
                    "resnet50x64_clip", "resnet50x64_clip_gap",
                    # over ~130M, and the same arithmetic as a smaller sibling held in float64
                    # (nfnet_f0, dm_nfnet_f0, resnet50x4_clip): shapes, to keep the suite's time
                    "nfnet_f1", "dm_nfnet_f1", "resnet50x16_clip", "resnet50x16_clip_gap"})


# one network per family (the shallowest that has the family's primitives), and primitives that
# live in more than one family: weight-standardised convs (BiT), EvoNorm, selective kernels,
# split attention, anti-aliasing, SE, ECA, Highway's gates, Res2Net's splits, iResNet's stages; NF-ResNets' scaled
# weight-standardised convs, alpha, beta and gained attention; GCNet's global context;
# TResNet's space-to-depth stem and leaky ReLUs; CSPNet's cross stages (split, concatenation);
# BAT's bilinear transform (at 256 px, the side its blocks tile)
FAMILY_NETS = ["resnet18", "resnet20", "plain20", "resnetv2_18", "wrn_16_8", "resnext50_32x4d",
               "res2net50_26w_4s", "iresnet50", "highway20", "res2net50_iresnet", "skresnet18",
               "resnest14d", "legacy_seresnet18", "ecaresnet26t", "resnetblur18", "resnetrs50",
               "resnetv2_50x1_bit", "resnetv2_50d_evos", "mnist_resnet", "regnety_002", "nf_seresnet26",
               "gcresnext26ts", "tresnet_m", "cspresnext50", "bat_resnext26ts", "inception_resnet_v2"]


def shape_device(name: str) -> str:
    """Where a shape-only test builds ``name``: the meta device (shapes without arithmetic) for
    the variants a library builds too, whose real forward tests/test_parity.py runs against it;
    the CPU for the rest (resfam's own variants, hybrids)."""
    import resfam

    return "meta" if resfam.get_spec(name).model.reference or name in GIANTS else "cpu"


def same_padded_models() -> list[str]:
    """Every bundled variant whose feature maps are the input divided by their stride: all but
    the LeNet-style nets, whose unpadded 5x5 convs cut the border (tests/test_mnist_net.py checks
    those against an independent reference)."""
    import resfam

    return [n for n in resfam.list_models() if resfam.get_spec(n).stem.type != "lenet"]


HF_REVISION = "0123456789abcdef0123456789abcdef01234567"


def warm_hf_cache(root, repo_id, state):
    """A Hugging Face hub cache entry as huggingface_hub writes it (``root`` is HF_HOME):
    refs/main -> a snapshot holding model.safetensors. What timm's loader reads offline."""
    from safetensors.torch import save_file

    repo = root / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HF_REVISION)
    snapshot = repo / "snapshots" / HF_REVISION
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def stop_after_epoch_one(row: dict) -> None:
    """An ``on_epoch`` callback that interrupts a study after its first epoch, as Ctrl-C would
    (the resume tests continue it)."""
    if row["epoch"] == 1:
        raise KeyboardInterrupt


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _threads():
    torch.manual_seed(0)
    yield
