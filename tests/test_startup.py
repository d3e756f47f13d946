"""The first commands a user types answer without importing torch or timm (issue 26: ~4 s of CPU
each before; benchmarks/startup.py times them: 0.1-0.2 s), and what is loaded late still works."""
from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
{code}
heavy = sorted(m for m in ("torch", "timm", "torchvision", "fvcore") if m in sys.modules)
assert not heavy, f"imported {{heavy}}"
"""


@pytest.mark.parametrize("code", [
    "import resfam",
    "import resfam.comparison, resfam.spec, resfam.network, resfam.trainability",
    "from resfam.comparison.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0",
    "from resfam.comparison.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0",
    "from resfam.comparison.cli import main\nassert main(['--list', 'res2net*']) == 0",
    "from resfam.comparison.cli import main\nassert main(['--list', '--family', 'highway']) == 0",
    "from resfam.comparison.cli import main\nassert main(['--list', 'nosuchnet']) == 2",
    "from resfam.trainability.cli import train_main\ntry:\n    train_main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0",
    "from resfam.trainability.cli import probe_main\ntry:\n    probe_main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0",
    "from resfam.space.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0",
    "from resfam.space.cli import main\nassert main(['list']) == 0",
    "import resfam.space\nassert resfam.space.list_spaces() and resfam.space.load('regnetx', check=False).name == 'regnetx'",
])
def test_a_command_that_needs_no_model_imports_no_model_library(code):
    proc = subprocess.run([sys.executable, "-c", CHECK.format(code=code)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_names_loaded_on_first_use_are_the_same_objects():
    code = """
import resfam, timm
from resfam import build, compare, SpecError
import resfam.detection
from resfam.integrations import torchvision as tv
from resfam.comparison.sweep import compare as sweep_compare
from resfam.errors import SpecError as E
assert resfam.detection is tv and compare is sweep_compare and SpecError is E
assert set(resfam.__all__) <= set(dir(resfam))
assert "resfam_iresnet50" in timm.list_models("resfam_*")   # registered as timm was imported
assert type(timm.create_model("resfam_resnet18", num_classes=3)).__name__ == "ResFamNet"
try:
    resfam.nosuch
except AttributeError as e:
    assert "nosuch" in str(e)
else:
    raise AssertionError("no AttributeError")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_timm_imported_first_still_gets_the_names():
    code = "import timm, resfam\nassert 'resfam_resnet18' in timm.list_models('resfam_*')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
