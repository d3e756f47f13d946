"""Formatting rows: an aligned table, markdown, csv or json. Rows stay machine-readable dicts;
only this module turns them into text."""
from __future__ import annotations

import csv
import io
import json
from typing import Optional

from tabulate import tabulate

# (row key, table header); a column appears when any row has the key
COLUMNS = [
    ("model", "model"),
    ("family", "family"),
    ("input", "input"),
    ("params", "params (M)"),
    ("gmacs", "GMACs"),
    ("other_mops", "other ops (M)"),
    ("gflops", "GFLOPs=2(MAC+other)"),
    ("acts_m", "acts (M)"),
    ("latency_ms", "latency ms (median)"),
    ("latency_iqr_ms", "IQR ms"),
    ("throughput", "img/s"),
    ("train_throughput", "train img/s"),
    ("peak_mem_mb", "peak MiB"),
    ("train_peak_mem_mb", "train peak MiB"),
    ("paper_params_m", "paper params (M)"),
    ("params_vs_paper_pct", "params vs paper %"),
    ("paper_gflops", "paper GFLOPs"),
    ("gmacs_vs_paper_pct", "GMACs vs paper %"),
    ("paper_top1", "paper top-1 %"),
    ("paper_error", "paper error %"),
    ("unsupported", "unsupported ops"),
    ("error", "error"),
]
FIELDS = [k for k, _ in COLUMNS] + ["params_trainable", "counter", "paper_source", "paper_dataset"]


def sort_rows(rows: list[dict], key: Optional[str]) -> list[dict]:
    """Sort by a row key; ``-key`` sorts descending; rows without the key go last."""
    if not key:
        return rows
    desc = key.startswith("-")
    key = key.lstrip("-")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: r[key], reverse=desc) + missing


def _cell(key: str, value):
    if value is None:
        return ""
    if key == "params":
        return f"{value / 1e6:.3f}"
    return value


def header_lines(meta: dict) -> list[str]:
    return [f"resfam-compare | torch {meta['torch']} | device {meta['device']} ({meta['device_name']}) | "
            f"threads {meta['threads']} | {meta['dtype']} | batch {meta['batch_size']} | "
            f"input {meta['input']}{' | channels_last' if meta['channels_last'] else ''}",
            "GMACs: conv+linear multiply-accumulates per image (fvcore's unit, BN folded); other ops: "
            "adds, gate muls/sigmoids, activations, pooling per image; paper GFLOPs are the papers' "
            "multiply-adds"]


def render(rows: list[dict], fmt: str, meta: dict) -> str:
    return render_rows(rows, COLUMNS, fmt, meta, header_lines(meta), FIELDS, _cell)


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
