"""Every python and bash block in README.md and docs/ runs (a doc example that breaks fails CI).

Blocks of one page run in order in one fresh folder, each in its own process. README's two
set-up commands are not re-run here: they are what .ci/run executes (tests/test_docs.py checks
that). ```text / ```py / ```yaml blocks are illustrations (configs for other frameworks, GPU-only
commands) and are not run."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str]]:
    found = BLOCK.findall(page.read_text())
    if page.name == "README.md":
        found = found[2:]  # the set-up commands, run by .ci/run itself
    return found


RUNNABLE = [p for p in PAGES if blocks(p)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_page_examples_run(page, tmp_path):
    for i, (lang, code) in enumerate(blocks(page)):
        cmd = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{page.name} block {i} ({lang}) failed:\n{code}\n{proc.stderr[-3000:]}"


def test_readme_and_docs_have_examples():
    assert len(RUNNABLE) >= 4 and sum(len(blocks(p)) for p in RUNNABLE) >= 10
