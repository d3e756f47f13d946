"""A design-space study on disk, and the population trained under one recipe.

A study is a folder. :func:`write_samples` puts the sampled designs there
(``space-study.json``: the spaces, seed, bands, draws and acceptance, and each design's row;
``designs.yaml``: every design as a spec, so ``resfam-compare`` and ``resfam-train`` take it as it is;
``designs.csv``: one row per design, its drawn values and complexity). :func:`train` trains every
design with :func:`resfam.train` (one recipe, seeds, checkpoints after every epoch, ``resume``
continuing exactly, ``torchrun`` dealing runs out with ``distribute='runs'``) into the same folder
and writes ``population.csv`` / ``population.json``: one row per model (space, drawn values,
GMACs, parameters, activations, training and test errors, seconds).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import yaml

from ..errors import ResfamError
from ..files import check_output, make_folder, write_text_atomically

MANIFEST, DESIGNS, DESIGN_ROWS, POPULATION = "space-study.json", "designs.yaml", "designs.csv", "population"
DESIGN_FIELDS = ("model", "space", "gmacs", "params", "acts")
RESULT_FIELDS = ("seeds", "epochs", "train_err", "train_eval_err", "test_err", "best_test_err", "seconds")


def _csv(rows: list[dict]) -> str:
    from ..comparison.report import render_rows

    fields = list(dict.fromkeys(k for r in rows for k in r))
    return render_rows(rows, [(f, f) for f in fields], "csv", {}, [])


def write_samples(out: str, samples: list, meta: Optional[dict] = None) -> list[dict]:
    """The study's design files (module docstring), ``meta`` recorded in ``space-study.json``;
    returns the design rows."""
    if isinstance(out, (str, os.PathLike)) and os.path.exists(os.path.join(os.fspath(out), MANIFEST)):
        raise ResfamError(f"{os.fspath(out)} already holds a design-space study; choose another --out "
                          "(its designs and trained runs stay as they are)")
    out = make_folder(out)
    for name in (MANIFEST, DESIGNS, DESIGN_ROWS):
        check_output(os.path.join(out, name), "--out")
    variants = {d.name: d.spec for s in samples for d in s.designs}
    rows = [d.row() for s in samples for d in s.designs]
    write_text_atomically(os.path.join(out, DESIGNS), yaml.safe_dump({"variants": variants}, sort_keys=False))
    write_text_atomically(os.path.join(out, DESIGN_ROWS), _csv(rows))
    manifest = dict(meta or {}, spaces=[dict(space=s.space, seed=s.seed, band=s.band, draws=s.draws,
                                       designs=len(s.designs), acceptance=s.acceptance) for s in samples],
                    rows=rows)  # read back as written (designs.csv is for people: its types are text)
    write_text_atomically(os.path.join(out, MANIFEST), json.dumps(manifest, indent=2) + "\n")
    return rows


def read_study(out: str) -> tuple[dict, dict[str, dict], list[dict]]:
    """(manifest, designs by name, design rows) of a study folder; a folder that is not one is a
    ResfamError saying how to make it."""
    from ..spec.loading import file_variants

    path = os.path.join(os.fspath(out), MANIFEST)
    if not os.path.isfile(path):
        raise ResfamError(f"{out}: not a design-space study (no {MANIFEST}); make one with "
                          "resfam-space sample SPACE --out FOLDER")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        rows = manifest.pop("rows")
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "model" in r for r in rows):
            raise ValueError("its rows are not design rows")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ResfamError(f"{out}: the study's files cannot be read ({e}); sample it again into "
                          "another folder") from None
    variants = file_variants(Path(out) / DESIGNS)
    return manifest, variants, rows


def train(out: str, *, seeds=1, resume: bool = False, device="cpu", on_epoch=None, on_step=None,
          **options) -> list[dict]:
    """Train every design of the study in ``out`` under one recipe (``options``: resfam.train's,
    e.g. ``data='digits', epochs=1``); returns the population rows, also written to
    ``population.csv`` / ``.json``."""
    from ..trainability.train import train as train_models

    manifest, variants, rows = read_study(out)
    for name in (f"{POPULATION}.csv", f"{POPULATION}.json"):
        check_output(os.path.join(out, name), "--out")
    specs = [dict(raw) for raw in variants.values()]
    study = train_models(specs, seeds=seeds, out=out, resume=resume, device=device,
                         on_epoch=on_epoch, on_step=on_step, **options)
    results = {r["model"]: r for r in study.summary}
    population = [dict(r, **{k: results[r["model"]].get(k) for k in RESULT_FIELDS})
                  for r in rows if r["model"] in results]
    write_text_atomically(os.path.join(out, f"{POPULATION}.csv"), _csv(population))
    write_text_atomically(os.path.join(out, f"{POPULATION}.json"), json.dumps(
        {"meta": dict(manifest, recipe=study.meta), "rows": population}, indent=2, default=str) + "\n")
    return population


def read_population(out: str) -> tuple[dict, list[dict]]:
    """(meta, rows) of a trained study (``population.json``), or of a population file."""
    path = out if os.path.isfile(out) else os.path.join(out, f"{POPULATION}.json")
    if not os.path.isfile(path):
        raise ResfamError(f"{out}: no trained population ({POPULATION}.json); train the study "
                          f"first: resfam-space train {out}")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        meta, rows = doc["meta"], doc["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "space" in r for r in rows):
            raise ValueError("rows without a space")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ResfamError(f"{path}: not a resfam-space population ({e})") from None
    return meta, rows
