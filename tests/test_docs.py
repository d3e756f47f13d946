"""The docs stay true: the spec reference is the schema's, and links between pages resolve."""
import re
from pathlib import Path

from resfam.spec.reference import reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_spec_reference_matches_the_schema():
    assert (ROOT / "docs" / "specs.md").read_text() == reference_markdown(), \
        "docs/specs.md is stale: run python docs/generate.py"


def test_links_between_pages_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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


def _generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_family_has_a_gallery_page():
    import resfam

    pages = {p.stem for p in (ROOT / "docs" / "families").glob("*.md")}
    assert set(resfam.list_families()) <= pages


def test_family_tables_match_what_the_tool_counts_today():
    gen = _generator()
    rows = gen.family_rows()
    for page in sorted((ROOT / "docs" / "families").glob("*.md")):
        found = gen.MARKER.search(page.read_text())
        assert found, f"{page.name} has no generated table"
        assert page.read_text()[found.start():found.end()] == \
            found.group(1) + gen.family_table(rows, page.stem) + found.group(2), \
            f"{page.name} is stale: run python docs/generate.py"


def test_weights_table_matches_what_the_hub_lists():
    gen = _generator()
    text = (ROOT / "docs" / "backbone.md").read_text()
    found = gen.WEIGHTS_MARKER.search(text)
    assert found and found.group(0) == found.group(1) + gen.weights_table() + "<!-- /generated -->", \
        "docs/backbone.md's weights table is stale: run python docs/generate.py"
