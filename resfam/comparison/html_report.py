"""``--output report.html``: one self-contained file a browser opens anywhere (no network): the
environment, the tables (click a header to sort; ``#sort=-gmacs`` in the address sorts on load),
their legends and the papers' notes, and the figures of ``--plot`` embedded as PNG (when
matplotlib is installed: ``pip install 'resfam[plot]'``)."""
from __future__ import annotations

import base64
import html
import io
import json
from typing import Optional

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
.env { color: #555; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 3px 9px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; position: sticky; top: 0; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.error td { color: #a00; }
.legend, .notes { color: #555; max-width: 70em; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""

SCRIPT = """
function sortTable(th, descending) {
  const table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  const numeric = th.dataset.type === "num";
  const rows = Array.from(body.rows);
  const key = r => { const v = r.cells[col].dataset.value; return numeric ? (v === "" ? NaN : Number(v)) : v; };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (numeric) { if (isNaN(x)) return 1; if (isNaN(y)) return -1; return descending ? y - x : x - y; }
    return descending ? y.localeCompare(x) : x.localeCompare(y);
  });
  rows.forEach(r => body.appendChild(r));
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", descending ? "descending" : "ascending");
}
document.querySelectorAll("th").forEach(th => th.addEventListener("click", () =>
  sortTable(th, th.getAttribute("aria-sort") === "ascending")));
window.addEventListener("load", () => {
  const m = location.hash.match(/sort=(-?)([\\w]+)/);
  if (m) document.querySelectorAll(`th[data-key="${m[2]}"]`).forEach(th => sortTable(th, m[1] === "-"));
  const images = Array.from(document.images);
  document.body.dataset.figuresRendered = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.ready = "1";
});
"""


def _table(rows: list[dict], keys: list[str], headers: dict, formats: dict, cell) -> str:
    head = "".join(f'<th data-key="{html.escape(k)}" data-type="{"text" if formats.get(k) is None else "num"}"'
                   f' title="{html.escape(k)}">{html.escape(headers.get(k, k))}</th>' for k in keys)
    body = []
    for r in rows:
        cells = []
        for k in keys:
            value = r.get(k)
            numeric = formats.get(k) is not None
            raw = "" if value is None else (json.dumps(value) if numeric and not isinstance(value, str) else str(value))
            cells.append(f'<td{" class=num" if numeric else ""} data-value="{html.escape(raw)}">'
                         f'{html.escape(cell(k, r))}</td>')
        body.append(f'<tr{" class=error" if r.get("error") else ""}>{"".join(cells)}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figures(rows: list[dict], meta: dict) -> tuple[list[str], Optional[str]]:
    """The embedded figures, or why there are none."""
    try:
        from .plot import figures, require_matplotlib

        plt = require_matplotlib()
    except Exception as e:  # noqa: BLE001 - the report is still worth having without them
        return [], str(e)
    out = []
    for suffix, fig in figures(rows, meta):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        what = "the papers' top-1 against GMACs" if suffix else "GMACs against measured latency"
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        out.append(f'<figure><img alt="{what}" src="data:image/png;base64,{data}">'
                   f"<figcaption>{what}</figcaption></figure>")
    if not out:
        return [], "no figure: they need --flops with --latency, or --paper rows with a top-1"
    return out, None


def render_html(tables: list[tuple[list[dict], list[str]]], meta: dict, header: list[str],
                legend: list[str], notes: list[str], headers: dict, formats: dict, cell,
                figure_rows: list[dict]) -> str:
    """The report: ``tables`` as (rows, keys), the ``header`` lines, ``legend`` and ``notes``."""
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>resfam-compare report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>resfam-compare</h1>",
             f'<p class="env">{html.escape(" ".join(line.strip() for line in header))}</p>']
    for i, (rows, keys) in enumerate(tables):
        if i:
            parts.append("<h2>Beside the papers</h2>")
        parts.append(_table(rows, keys, headers, formats, cell))
    if legend:
        parts.append(f'<p class="legend">{html.escape(" ".join(legend))}</p>')
    if notes:
        items = "".join(f"<li>{html.escape(n.strip())}</li>" for n in notes)
        parts.append(f'<div class="notes">Paper notes:<ul>{items}</ul></div>')
    figures, why = _figures(figure_rows, meta)
    parts.append("<h2>Figures</h2>")
    parts += figures or [f'<p class="notes">{html.escape(why or "")}</p>']
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
