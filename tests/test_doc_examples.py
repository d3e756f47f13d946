"""Every python and bash block in README.md and docs/ runs (a doc example that breaks fails CI).

Blocks of one page run in order in one fresh folder, each in its own process. README's two
set-up commands are not re-run here: they are what .ci/run executes (tests/test_docs.py checks
that). ```text / ```py / ```yaml blocks are illustrations (configs for other frameworks, GPU-only
commands) and are not run.

Examples that load published weights (``pretrained=True``) read them offline from a Hugging Face
cache the test fills with random weights of the right layout, where timm's loader looks: the
examples run as written, without the network."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import warm_hf_cache

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str]]:
    found = BLOCK.findall(page.read_text())
    if page.name == "README.md":
        found = found[2:]  # the set-up commands, run by .ci/run itself
    return found


RUNNABLE = [p for p in PAGES if blocks(p)]
WEIGHTS = {"timm/resnet50.a1_in1k": "resnet50", "timm/res2net50_26w_4s.in1k": "res2net50_26w_4s"}


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    import timm

    hf = tmp_path_factory.mktemp("hf")
    for repo_id, arch in WEIGHTS.items():
        warm_hf_cache(hf, repo_id, timm.create_model(arch).state_dict())
    return dict(os.environ, HF_HOME=str(hf), HF_HUB_OFFLINE="1",
                TORCH_HOME=str(tmp_path_factory.mktemp("torch")))


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_page_examples_run(page, tmp_path, offline_env):
    for i, (lang, code) in enumerate(blocks(page)):
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900,
                              env=offline_env)
        assert proc.returncode == 0, f"{page.name} block {i} ({lang}) failed:\n{code}\n{proc.stderr[-3000:]}"


def test_readme_and_docs_have_examples():
    assert len(RUNNABLE) >= 4 and sum(len(blocks(p)) for p in RUNNABLE) >= 10
