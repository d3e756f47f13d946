"""The spec registry: bundled YAML files, ``extends:`` resolution, look-up by name or path.

A variant may ``extends:`` another in the
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
from typing import TYPE_CHECKING, Iterable, Optional, Union

from ..errors import ArgumentError, SpecError, UnknownModelError, did_you_mean, short_repr
from .loading import check_size_and_depth, file_variants

if TYPE_CHECKING:  # the schema imports the primitives, and torch: only where a spec is validated
    from .schema import Spec

_HERE = Path(__file__).resolve().parent.parent
# installed wheels carry the specs inside the package; a source checkout keeps them beside it
SPECS_DIR = next((p for p in (_HERE / "specs", _HERE.parent / "specs") if p.is_dir()), _HERE / "specs")
NOT_INHERITED = ("reported", "reference", "name", "extends")
MAX_EXTENDS = 32

SpecRef = Union[str, os.PathLike, dict, "Spec"]


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
    """Apply ``extends`` up the chain; ``local`` holds the variants of the same file. ``chain``
    holds (file, name) pairs: a user file's ``resnet50`` may extend the bundled ``resnet50``."""
    if (file, name) in chain:
        cycle = " -> ".join([n for _, n in chain] + [name])
        raise SpecError(f"'extends' cycle: {cycle}", file=chain[0][0], variant=chain[0][1],
                        key="extends", hint="remove one of the 'extends' links")
    if len(chain) >= MAX_EXTENDS:
        raise SpecError(f"'extends' chain longer than {MAX_EXTENDS} links", file=chain[0][0],
                        variant=chain[0][1], key="extends")
    parent_name = raw.get("extends")
    if parent_name is None:
        return raw
    if not isinstance(parent_name, str):
        raise SpecError(f"must be a variant name, got {short_repr(parent_name)}", file=file,
                        variant=name, key="extends")
    catalog = _catalog()
    if parent_name in local and parent_name != name:
        parent_file, parent_raw, parent_local = file, local[parent_name], local
    elif parent_name in catalog and (catalog[parent_name][0], parent_name) != (file, name):
        parent_file, parent_raw = catalog[parent_name]
        parent_local = {n: r for n, (f, r) in catalog.items() if f == parent_file}
    else:
        known = list(local) + list(catalog)
        raise SpecError(f"parent variant {short_repr(parent_name)} not found", file=file,
                        variant=name, key="extends",
                        hint=did_you_mean(parent_name, known) or "see resfam.list_models()")
    parent = _resolve(parent_name, parent_file, parent_raw, parent_local, chain + ((file, name),))
    merged = _merge(parent, raw)
    merged["name"] = raw.get("name", name)
    merged.pop("extends", None)
    return merged


def _build_spec(name: str, file: str, raw: dict, local: dict[str, dict]) -> Spec:
    from .schema import Spec, validate_spec

    try:
        resolved = _resolve(name, file, raw, local)
        model, stages = validate_spec(resolved)
    except SpecError as e:
        raise e.located(file=file, variant=name) from None
    return Spec(name=model.name, family=model.family, file=file, model=model, stages=stages,
                raw=resolved)


@functools.lru_cache(maxsize=None)
def _registered_spec(name: str) -> Spec:
    return _build_spec(name, *_bundled(name))


def _bundled(name: str) -> tuple[str, dict, dict[str, dict]]:
    """A bundled variant's file, its raw YAML and the other variants of its file."""
    catalog = _catalog()
    file, raw = catalog[name]
    return file, raw, {n: r for n, (f, r) in catalog.items() if f == file}


def _split_path(ref: str) -> tuple[str, str]:
    """``path.yaml:variant`` -> (path, variant); an existing file is taken whole."""
    if os.path.isfile(ref):
        return ref, ""
    path, _, variant = ref.partition(":")
    return path, variant


def is_spec_path(ref: str) -> bool:
    """A spec file reference: a ``.yaml`` / ``.yml`` suffix (with an optional ``:variant``) or
    a path separator. A bare name is a registered name, whatever the working directory holds
    (a detection work directory often has a folder called ``resnet50``)."""
    path, _ = _split_path(ref)
    return path.endswith((".yaml", ".yml")) or "/" in ref or os.sep in ref


def get_spec(ref: SpecRef) -> Spec:
    """The resolved spec of a registered name, a spec file (``path.yaml`` or
    ``path.yaml:variant``), a mapping, or a Spec (returned as it is).

    What it returns is the caller's own: editing it (``spec.raw``, ``spec.model.block``)
    changes no later build.
    """
    from .schema import Spec

    if isinstance(ref, Spec):
        return ref
    if isinstance(ref, dict):
        name = ref.get("name", "<dict>")
        name = name if isinstance(name, str) else "<dict>"
        check_size_and_depth(ref, "<dict>")
        return _build_spec(name, "<dict>", copy.deepcopy(ref), {})
    if isinstance(ref, os.PathLike):
        ref = os.fspath(ref)
        if not isinstance(ref, str):
            raise SpecError(f"a spec path must be text, got {type(ref).__name__}")
        path, variant = _split_path(ref)
        return _spec_from_file(path, variant)
    if not isinstance(ref, str):
        raise SpecError(f"expected a model name, a spec file path, a spec mapping or a Spec, got "
                        f"{type(ref).__name__} {short_repr(ref)}", hint="see resfam.list_models()")
    if not is_spec_path(ref):
        if ref not in _catalog():
            raise UnknownModelError(ref, _catalog())
        return copy.deepcopy(_registered_spec(ref))
    path, variant = _split_path(ref)
    return _spec_from_file(path, variant)


def _spec_from_file(path: str, variant: str) -> Spec:
    variants = file_variants(Path(path))
    if not variant:
        if len(variants) > 1:
            raise SpecError(f"the file defines {len(variants)} variants", file=path,
                            hint=f"name one as '{path}:<variant>', one of: {', '.join(variants)}")
        variant = next(iter(variants))
    if variant not in variants:
        raise SpecError(f"no variant {short_repr(variant)} in this file", file=path,
                        hint=did_you_mean(variant, variants) or f"one of: {', '.join(variants)}")
    return _build_spec(variant, path, copy.deepcopy(variants[variant]), variants)


def list_models(pattern: Union[str, Iterable[str]] = "*", family: Optional[str] = None,
                reference: Optional[str] = None) -> list[str]:
    """Sorted registered names matching any of the fnmatch ``pattern``s (and ``family``; with
    ``reference``, only those that library (``"timm"``, ``"torchvision"``) builds under the same
    name: the spec's ``reference:``). Which of them have published weights is the weights
    layer's answer: :func:`resfam.list_models` takes ``pretrained=True``."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern) \
        if isinstance(pattern, (list, tuple, set)) else [pattern]
    if not all(isinstance(p, str) for p in patterns) or (family is not None and not isinstance(family, str)):
        raise ArgumentError("list_models takes fnmatch patterns (strings) and a family name, got "
                            f"{short_repr(pattern)}, {short_repr(family)}")
    names = [n for n in _catalog() if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if family is not None:
        names = [n for n in names if family in _families(n)]
    if reference is not None:
        if reference not in ("timm", "torchvision"):
            raise ArgumentError(f"reference must be 'timm' or 'torchvision', got {short_repr(reference)}")
        names = [n for n in names if reference in references(n)]
    return sorted(names)


def references(name: str) -> list[str]:
    """The libraries that build the bundled variant ``name`` under the same name (its spec's
    ``reference:``); none for a name that is not bundled (a user's spec)."""
    return list(_registered_spec(name).model.reference) if name in _catalog() else []


@functools.lru_cache(maxsize=None)
def _families(name: str) -> tuple[str, ...]:
    """A bundled variant's own family, then those it also belongs to (a hybrid's ``also_in``),
    from its resolved YAML: listing by family validates nothing, so imports no torch (the tests
    build every bundled variant)."""
    resolved = _resolve(name, *_bundled(name))
    return (resolved["family"], *resolved.get("also_in", ()))


def list_families() -> list[str]:
    return sorted({f for n in _catalog() for f in _families(n)})
