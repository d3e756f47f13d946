"""``--output report.html`` is a real report (issue 26: it was a plain-text table in a .html
file): parsed here with the standard library everywhere, and opened in headless Chromium where
Debian's ``chromium`` is installed (apt-get install chromium): the table is there, sorts from the
address, and both figures rendered; a screenshot is written."""
from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from resfam.comparison import cli

MODELS = ["resnet20", "resnet32", "plain20", "resnet18", "resnet50"]


class _Page(HTMLParser):
    """Table rows (their cells' data-value), headers' keys, images' sources, body attributes."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.body, self._row = [], [], {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"keys": [], "rows": []})
        elif tag == "th":
            self.tables[-1]["keys"].append(a["data-key"])
        elif tag == "tr" and self.tables and self.tables[-1]["keys"]:
            self._row = []
        elif tag == "td":
            self._row.append(a.get("data-value"))
        elif tag == "img":
            self.images.append(a["src"])
        elif tag == "body":
            self.body = a

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            self.tables[-1]["rows"].append(self._row)
            self._row = None


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "report.html"
    assert cli.main([*MODELS, "--flops", "--latency", "--runs", "2", "--warmup", "0", "--paper",
                     "--output", str(path), "--no-progress"]) == 0
    return path


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_the_report_holds_the_tables_legend_and_figures(report):
    from PIL import Image

    text = report.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and "torch" in text and "<script>" in text
    assert "http://" not in text and "https://" not in text  # self-contained: opens offline
    page = _parse(text)
    main, paper = page.tables
    assert main["keys"][:2] == ["model", "input"] and "gmacs" in main["keys"] and "latency_ms" in main["keys"]
    assert [r[0] for r in main["rows"]] == MODELS
    assert {r[0] for r in paper["rows"]} == {"resnet20", "resnet32", "resnet18", "resnet50"}
    assert "paper_protocol" in paper["keys"]
    assert len(page.images) == 2  # GMACs vs latency, the papers' top-1 vs GMACs
    for src in page.images:
        head, data = src.split(",", 1)
        assert head == "data:image/png;base64"
        assert Image.open(io.BytesIO(base64.b64decode(data))).size[0] >= 800
    assert "GMACs: conv+linear" in text and "Paper notes" in text


def test_html_is_escaped():
    from resfam.comparison.report import render

    rows = [{"model": "<script>alert(1)</script>", "params": 1e6, "error": "x & y"}]
    text = render(rows, "html", {"torch": "t", "device": "cpu", "device_name": "c", "threads": 1,
                                 "dtype": "float32", "batch_size": 1, "input": "224",
                                 "channels_last": False})
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "x &amp; y" in text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install "
                    "chromium); the report's structure is checked above without it")
def test_the_report_opens_sorts_and_draws_in_headless_chromium(report, tmp_path):
    proc = _chromium("--dump-dom", f"{report.as_uri()}#sort=-gmacs")
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = _parse(proc.stdout)
    assert page.body.get("data-ready") == "1"  # the script ran to its end
    assert page.body.get("data-figures-rendered") == "2"  # both PNGs decoded and laid out
    main = page.tables[0]
    gmacs = [float(r[main["keys"].index("gmacs")]) for r in main["rows"]]
    assert len(gmacs) == len(MODELS) and gmacs == sorted(gmacs, reverse=True)  # sorted in the browser
    shot = tmp_path / "report.png"
    proc = _chromium("--window-size=1300,1800", f"--screenshot={shot}", report.as_uri())
    assert proc.returncode == 0 and shot.stat().st_size > 20_000, proc.stderr[-2000:]
