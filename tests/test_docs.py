"""The docs stay true: the spec reference is the schema's, and links between pages resolve."""
import re
from pathlib import Path

from resfam.spec_doc import reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_spec_reference_matches_the_schema():
    assert (ROOT / "docs" / "specs.md").read_text() == reference_markdown(), \
        "docs/specs.md is stale: run python docs/generate.py"


def test_links_between_pages_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_ci_runs_exactly_the_readme_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    install, tests = blocks[0].strip(), blocks[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install in ci and tests in ci
