import warnings

import pytest
import torch
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
    """Give every BatchNorm non-trivial statistics and affine terms, so a norm mapped to the
    wrong place changes the output (random-init BN is the identity in eval mode)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(autouse=True)
def _threads():
    torch.manual_seed(0)
    yield
