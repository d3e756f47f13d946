"""Formatting rows: an aligned table (fits 120 columns: short headers, units in a legend line,
numbers right-aligned), markdown, LaTeX, csv, json or JSON lines. Rows stay machine-readable
dicts; only this module turns them into text. csv / json / jsonl carry every field and the
environment; the table shows the columns a reader compares."""
from __future__ import annotations

import csv
import io
import json
import textwrap
from typing import Optional

from tabulate import tabulate

WIDTH = 120  # the default table's budget (a common terminal)


# (row key, short header, legend entry or "", number format or None)
COLUMNS = [
    ("model", "model", "", None),
    ("family", "family", "", None),
    ("engine", "engine", "", None),
    ("input", "px", "px: input side", "d"),
    ("batch", "batch", "batch: images per forward (halved after running out of memory)", "d"),
    ("params", "params", "params: M", "params"),
    ("gmacs", "GMACs", "GMACs: conv+linear multiply-accumulates/image (BN folded)", ".3f"),
    ("other_mops", "other", "other: M adds, muls, sigmoids, activations, pools/image", ".1f"),
    ("gflops", "GFLOPs", "GFLOPs = 2 (MACs + other)", ".3f"),
    ("acts_m", "acts", "acts: M conv+linear outputs/image", ".2f"),
    ("latency_ms", "ms", "ms: median latency/batch (*: IQR > 10% of it)", "ms"),
    ("latency_iqr_ms", "IQR", "IQR: ms", ".2f"),
    ("throughput", "img/s", "img/s: batch/median", ".1f"),
    ("train_throughput", "train img/s", "train img/s: SGD steps", ".1f"),
    ("peak_mem_mb", "MiB", "MiB: peak memory torch allocated in one forward (not RSS)", ".1f"),
    ("train_peak_mem_mb", "train MiB", "train MiB: in one SGD step", ".1f"),
    ("speed_vs_eager", "vs eager", "vs eager: eager's time / the engine's, median over alternating rounds", ".2f"),
    ("gflops_per_s", "GFLOP/s", "GFLOP/s: 2 (MACs + other) x batch / median latency", ".0f"),
    ("ceiling_pct", "% ceil", "% ceil: of the ceiling measured here (header)", ".0f"),
    ("speed_vs_ref", "vs ref", "vs ref: reference time / resfam time, median over alternating rounds (> 1: resfam faster)", ".3f"),
    ("speed_vs_ref_iqr", "ratio IQR", "ratio IQR: interquartile range of those rounds' ratios", ".3f"),
    ("paper_params_m", "paper params", "paper params: M", "g"),
    ("params_vs_paper_pct", "Δparams%", "", "+.1f"),
    ("paper_input", "paper px", "paper px: the side the paper counts at (ΔGMACs% compares there)", "d"),
    ("paper_input_gmacs", "GMACs there", "GMACs there: resfam's count at paper px", ".3f"),
    ("paper_gmacs", "paper GMACs", "paper GMACs: the paper's multiply-adds", "g"),
    ("gmacs_vs_paper_pct", "ΔGMACs%", "Δ%: resfam vs paper", "+.1f"),
    ("paper_top1", "top-1%", "top-1%: the paper's (100 - error where it prints error)", "g"),
    ("paper_dataset", "dataset", "", None),
    ("paper_protocol", "protocol", "", None),
    ("error", "error", "", None),
]
HEADERS = {k: h for k, h, _, _ in COLUMNS}
FORMATS = {k: f for k, _, _, f in COLUMNS}
LEGEND = {k: text for k, _, text, _ in COLUMNS if text}
PAPER = ["paper_params_m", "params_vs_paper_pct", "paper_input", "paper_input_gmacs", "paper_gmacs", "gmacs_vs_paper_pct",
         "paper_top1", "paper_dataset", "paper_protocol"]
PAPER_TABLE = ["model", "params", "paper_params_m", "params_vs_paper_pct", "paper_input", "paper_input_gmacs",
               "paper_gmacs", "gmacs_vs_paper_pct", "paper_top1", "paper_dataset", "paper_protocol"]
# (paper px and the count there only where a row was measured at another side than its paper's)
TABLE_DEFAULT = [k for k, *_ in COLUMNS if k not in PAPER + ["family", "gflops", "batch"]]
ENV_FIELDS = ["torch", "device", "threads", "dtype"]
FIELDS = [k for k, *_ in COLUMNS] + ["speed_vs_eager_iqr", "ceiling_gflops", "engine_error", "latency_q1_ms", "latency_q3_ms", "target", "library", "ref_for", "params_trainable", "counter",
                                     "unsupported", "noisy", "paper_source", "paper_note"]
FORMATS_BY_SUFFIX = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".md": "markdown",
                     ".tex": "latex", ".html": "html", ".htm": "html"}
OUTPUT_FORMATS = ["table", *dict.fromkeys(FORMATS_BY_SUFFIX.values())]


def sort_rows(rows: list[dict], key: Optional[str]) -> list[dict]:
    """Sort by a row key; ``-key`` sorts descending; rows without the key go last."""
    if not key:
        return rows
    desc = key.startswith("-")
    key = key.lstrip("-")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: r[key], reverse=desc) + missing


def cell(key: str, row: dict) -> str:
    value = row.get(key)
    if value is None or value == "":
        return ""
    fmt = FORMATS.get(key)
    if fmt == "params":
        return f"{value / 1e6:.3f}"
    if fmt == "ms":
        return f"{value:.2f}{'*' if row.get('noisy') else ''}"
    if fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def header_lines(meta: dict) -> list[str]:
    head = (f"resfam-compare | torch {meta['torch']} | {meta['device']} ({meta['device_name']}) | "
            f"{meta['threads']} threads | {meta['dtype']} | batch {meta['batch_size']} | "
            f"input {meta['input']}{' | channels_last' if meta['channels_last'] else ''}"
            + (f" | ceiling {meta['ceiling']}" if meta.get("ceiling") else ""))
    return textwrap.wrap(head, WIDTH, subsequent_indent="  ")


def legend_lines(keys: list[str]) -> list[str]:
    text = "; ".join(LEGEND[k] for k in keys if k in LEGEND)
    return textwrap.wrap(text, WIDTH) if text else []


def table_keys(rows: list[dict], columns: Optional[list[str]], meta: dict) -> list[str]:
    """The table's columns: ``columns`` as asked, else the default set, each only where some
    row has a value."""
    if columns:
        wanted = columns
    else:
        wanted = list(TABLE_DEFAULT)
        if any(r.get("batch") not in (None, meta.get("batch_size")) for r in rows):
            wanted.insert(wanted.index("params"), "batch")
    return [k for k in wanted if any(r.get(k) not in (None, "") for r in rows)]


def footnotes(rows: list[dict]) -> list[str]:
    """The papers' notes (why a count differs on purpose), one line per model."""
    return [f"  {r['model']}: {r['paper_note']}" for r in rows if r.get("paper_note")]


def render(rows: list[dict], fmt: str, meta: dict, columns: Optional[list[str]] = None,
           paper: bool = False) -> str:
    env = {k: meta.get(k) for k in ENV_FIELDS}
    if fmt == "json":
        return render_rows(rows, [], fmt, meta, [])
    if fmt == "jsonl":
        return "".join(json_line(r, meta) for r in rows)
    if fmt == "csv":
        keys = [k for k in FIELDS if any(r.get(k) not in (None, "") for r in rows)]
        return render_rows([{**r, **env} for r in rows], [(k, k) for k in keys + ENV_FIELDS], "csv", meta, [])
    tables = [(rows, table_keys(rows, columns, meta))]
    papers = [r for r in rows if r.get("paper_source")]
    if paper and papers and not columns:  # a second table: resfam's counts beside the papers'
        moved = any(r.get("paper_input") not in (None, r.get("input")) for r in papers)
        tables.append((papers, [k for k in PAPER_TABLE if any(r.get(k) not in (None, "") for r in papers)
                                and (moved or k not in ("paper_input", "paper_input_gmacs"))]))
    keys_shown = list(dict.fromkeys(k for _, keys in tables for k in keys))
    notes = footnotes(papers) if paper else []
    if fmt == "html":
        from .html_report import render_html

        return render_html(tables, meta, header_lines(meta), legend_lines(keys_shown), notes,
                           HEADERS, FORMATS, cell, rows)
    texts = []
    for sub, keys in tables:
        body = [[cell(k, r) for k in keys] for r in sub]
        headers = [HEADERS.get(k, k) for k in keys]
        align = ["left" if FORMATS.get(k) is None else "right" for k in keys]
        style = {"latex": "latex_booktabs", "markdown": "github"}.get(fmt, "simple")
        texts.append(tabulate(body, headers=headers, tablefmt=style, disable_numparse=True, colalign=align))
    if fmt == "latex":
        return latex_ascii("\n\n".join(texts) + "\n")
    tail = legend_lines(keys_shown) + (["paper notes:"] + notes if notes else [])
    lines = header_lines(meta)
    if fmt == "markdown":
        lines, tail = [f"_{line}_" for line in lines], [f"_{line}_" for line in tail]
    return ("\n".join(lines) + "\n\n" + "\n\n".join(texts) + "\n"
            + ("\n" + "\n".join(tail) + "\n" if tail else ""))


LATEX_SYMBOLS = {"Δ": r"$\Delta$", "±": r"$\pm$", "×": r"$\times$", "µ": r"$\mu$", "–": "--",
                 "—": "---", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}"}


def latex_ascii(text: str) -> str:
    """LaTeX that pdflatex reads without a Unicode package: the symbols resfam's tables use as
    math or text commands; any other non-ASCII character as a question mark (a model name from
    a user's spec file may hold one), never raw UTF-8."""
    return "".join(LATEX_SYMBOLS.get(ch, ch if ord(ch) < 128 else "?") for ch in text)


def json_line(row: dict, meta: dict) -> str:
    """One row as a JSON line with the environment it was measured in (``--output x.jsonl``)."""
    return json.dumps({**row, **{k: meta.get(k) for k in ENV_FIELDS}}, default=str) + "\n"


def render_rows(rows: list[dict], columns: list[tuple[str, str]], fmt: str, meta: dict,
                header: list[str], fields: Optional[list[str]] = None, cell=None) -> str:
    """``rows`` as json (with ``meta``), csv (every field present, ``fields`` order), or an
    aligned / markdown table of the ``columns`` any row has, under the ``header`` lines."""
    if fmt == "json":
        return json.dumps({"meta": meta, "rows": rows}, indent=2, default=str) + "\n"
    keys = [k for k, _ in columns if any(r.get(k) not in (None, "") for r in rows)]
    if fmt == "csv":
        extra = [k for k in (fields or []) if k not in keys and any(r.get(k) is not None for r in rows)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys + extra, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    cell = cell or (lambda key, value: "" if value is None else value)
    headers = [h for k, h in columns if k in keys]
    body = [[cell(k, r.get(k)) for k in keys] for r in rows]
    style = "github" if fmt == "markdown" else "simple"
    lines = [f"_{line}_" for line in header] if fmt == "markdown" else list(header)
    return "\n".join(lines) + "\n\n" + tabulate(body, headers=headers, tablefmt=style,
                                                disable_numparse=True) + "\n"
