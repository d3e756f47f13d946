"""The spec registry: bundled YAML files, ``extends:`` resolution, look-up by name or path.

A spec file holds either one variant (its top-level keys are the spec's) or several under
``variants:`` with an optional file-level ``family:``. A variant may ``extends:`` another in the
same file, in the bundled registry, or (for user files) any bundled one. Mappings deep-merge;
a mapping whose ``type`` changes replaces the parent's; ``reported:`` is never inherited (a
child's paper figures are its own).
"""
from __future__ import annotations

import copy
import fnmatch
import functools
import os
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from .errors import SpecError, UnknownModelError, did_you_mean
from .spec import Spec, validate_spec

_HERE = Path(__file__).resolve().parent
# installed wheels carry the specs inside the package; a source checkout keeps them beside it
SPECS_DIR = next((p for p in (_HERE / "specs", _HERE.parent / "specs") if p.is_dir()), _HERE / "specs")
NOT_INHERITED = ("reported", "name", "extends")

SpecRef = Union[str, os.PathLike, dict, Spec]


def load_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader; syntax errors name the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec file not found", file=str(path),
                        hint="check the path, or pass a registered model name") from None
    except OSError as e:
        raise SpecError(f"cannot read spec file: {e.strerror}", file=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"malformed YAML{where}: {problem}", file=str(path)) from None


def file_variants(path: Path) -> dict[str, dict]:
    """The variants a spec file defines, by name (raw, before ``extends`` resolution)."""
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise SpecError(f"a spec file must hold a mapping, got {type(doc).__name__}", file=str(path))
    if "variants" not in doc:
        return {str(doc.get("name") or Path(path).stem): doc}
    extra = set(doc) - {"family", "description", "variants"}
    if extra:
        raise SpecError("unknown file-level key", file=str(path), key=sorted(extra)[0],
                        hint="a file with 'variants:' takes only 'family', 'description' and 'variants'")
    variants = doc["variants"]
    if not isinstance(variants, dict) or not variants:
        raise SpecError("'variants' must be a non-empty mapping of name -> spec", file=str(path),
                        key="variants")
    out = {}
    for name, raw in variants.items():
        if not isinstance(raw, dict):
            raise SpecError(f"must be a mapping, got {type(raw).__name__}", file=str(path),
                            variant=str(name))
        raw = dict(raw)
        raw.setdefault("name", str(name))
        if "family" in doc:
            raw.setdefault("family", doc["family"])
        out[str(name)] = raw
    return out


@functools.lru_cache(maxsize=None)
def _catalog() -> dict[str, tuple[str, dict]]:
    """name -> (file, raw variant) for every bundled spec."""
    out: dict[str, tuple[str, dict]] = {}
    for path in sorted(SPECS_DIR.glob("*.yaml")):
        for name, raw in file_variants(path).items():
            if name in out:
                raise SpecError(f"variant defined twice (also in {out[name][0]})", file=str(path),
                                variant=name)
            out[name] = (str(path), raw)
    return out


def _merge(parent: dict, child: dict) -> dict:
    out = copy.deepcopy({k: v for k, v in parent.items() if k not in NOT_INHERITED})
    for key, value in child.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and value.get("type", old.get("type")) == old.get("type"):
            out[key] = _merge(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _resolve(name: str, file: str, raw: dict, local: dict[str, dict], chain: tuple = ()) -> dict:
    """Apply ``extends`` up the chain; ``local`` holds the variants of the same file."""
    if name in chain:
        cycle = " -> ".join(chain + (name,))
        raise SpecError(f"'extends' cycle: {cycle}", file=file, variant=chain[0], key="extends",
                        hint="remove one of the 'extends' links")
    parent_name = raw.get("extends")
    if parent_name is None:
        return raw
    if not isinstance(parent_name, str):
        raise SpecError("must be a variant name", file=file, variant=name, key="extends")
    catalog = _catalog()
    if parent_name in local and parent_name != name:
        parent_file, parent_raw, parent_local = file, local[parent_name], local
    elif parent_name in catalog:
        parent_file, parent_raw = catalog[parent_name]
        parent_local = {n: r for n, (f, r) in catalog.items() if f == parent_file}
    else:
        known = list(local) + list(catalog)
        raise SpecError(f"parent variant {parent_name!r} not found", file=file, variant=name,
                        key="extends", hint=did_you_mean(parent_name, known) or "see resfam.list_models()")
    parent = _resolve(parent_name, parent_file, parent_raw, parent_local, chain + (name,))
    merged = _merge(parent, raw)
    merged["name"] = raw.get("name", name)
    merged.pop("extends", None)
    return merged


def _build_spec(name: str, file: str, raw: dict, local: dict[str, dict]) -> Spec:
    try:
        resolved = _resolve(name, file, raw, local)
        model, stages = validate_spec(resolved)
    except SpecError as e:
        raise e.located(file=file, variant=name) from None
    return Spec(name=model.name, family=model.family, file=file, model=model, stages=stages,
                raw=resolved)


@functools.lru_cache(maxsize=None)
def _registered_spec(name: str) -> Spec:
    catalog = _catalog()
    file, raw = catalog[name]
    local = {n: r for n, (f, r) in catalog.items() if f == file}
    return _build_spec(name, file, raw, local)


def _split_path(ref: str) -> tuple[str, str]:
    """``path.yaml:variant`` -> (path, variant); an existing file is taken whole."""
    if os.path.exists(ref):
        return ref, ""
    path, _, variant = ref.partition(":")
    return path, variant


def is_spec_path(ref: str) -> bool:
    path, _ = _split_path(ref)
    return path.endswith((".yaml", ".yml")) or os.sep in path or os.path.exists(path)


def get_spec(ref: SpecRef) -> Spec:
    """The resolved spec of a registered name, a spec file (``path.yaml`` or
    ``path.yaml:variant``), a mapping, or a Spec (returned as it is)."""
    if isinstance(ref, Spec):
        return ref
    if isinstance(ref, dict):
        name = str(ref.get("name", "<dict>"))
        return _build_spec(name, "<dict>", ref, {})
    ref = os.fspath(ref)
    if not is_spec_path(ref):
        if ref not in _catalog():
            raise UnknownModelError(ref, _catalog())
        return _registered_spec(ref)
    path, variant = _split_path(ref)
    variants = file_variants(Path(path))
    if not variant:
        if len(variants) > 1:
            raise SpecError(f"the file defines {len(variants)} variants", file=path,
                            hint=f"name one as '{path}:<variant>', one of: {', '.join(variants)}")
        variant = next(iter(variants))
    if variant not in variants:
        raise SpecError(f"no variant {variant!r} in this file", file=path,
                        hint=did_you_mean(variant, variants) or f"one of: {', '.join(variants)}")
    return _build_spec(variant, path, variants[variant], variants)


def list_models(pattern: Union[str, Iterable[str]] = "*", family: Optional[str] = None) -> list[str]:
    """Sorted registered names matching any of the fnmatch ``pattern``s (and ``family``)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = [n for n in _catalog() if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if family is not None:
        names = [n for n in names if _registered_spec(n).family == family]
    return sorted(names)


def list_families() -> list[str]:
    return sorted({_registered_spec(n).family for n in _catalog()})
