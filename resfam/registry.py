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
import stat
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import yaml

from .errors import ArgumentError, SpecError, UnknownModelError, did_you_mean, short_repr
from .spec import Spec, validate_spec

_HERE = Path(__file__).resolve().parent
# installed wheels carry the specs inside the package; a source checkout keeps them beside it
SPECS_DIR = next((p for p in (_HERE / "specs", _HERE.parent / "specs") if p.is_dir()), _HERE / "specs")
NOT_INHERITED = ("reported", "reference", "name", "extends")
# a spec is a few hundred bytes; these bounds stop hostile files (a YAML alias bomb, /dev/zero,
# a 10,000-deep nesting) with a SpecError instead of a hang or a RecursionError
MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000  # values in a file, each alias counted as often as it is used
MAX_NESTING = 32
MAX_EXTENDS = 32

SpecRef = Union[str, os.PathLike, dict, Spec]


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_FILE_BYTES, in UTF-8. The file is opened
    non-blocking and checked before reading, so a FIFO, a device (``/dev/zero``) or a directory
    is refused instead of blocking or never ending."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise SpecError("spec file not found", file=str(path),
                        hint="check the path, or pass a registered model name") from None
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise SpecError(f"cannot read spec file: {getattr(e, 'strerror', None) or e}",
                        file=short_repr(str(path))) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise SpecError(f"cannot read spec file: it is {kind}", file=str(path),
                        hint="pass a .yaml file, or a registered model name")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise SpecError(f"cannot read spec file: {e.strerror}", file=str(path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(f"spec file is larger than {MAX_FILE_BYTES} bytes", file=str(path),
                        hint="a spec is a few hundred bytes; is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"spec file is not UTF-8 text (byte {e.start})", file=str(path),
                        hint="save it as UTF-8") from None


def check_size_and_depth(doc: Any, file: str) -> None:
    """Refuse a document with more than MAX_VALUES values (aliases counted once per use: an
    alias bomb is small on disk and huge when walked) or nested deeper than MAX_NESTING."""
    count, stack = 0, [(doc, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise SpecError(f"the spec expands to more than {MAX_VALUES} values", file=file,
                            hint="YAML anchors and aliases that repeat each other?")
        if depth > MAX_NESTING:
            raise SpecError(f"the spec is nested more than {MAX_NESTING} levels deep", file=file)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for kv in value.items() for v in kv)
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)


def _shallow(text: str) -> bool:
    """Whether the text cannot nest deeper than MAX_NESTING: its indentation and its bracket depth
    (counted without regard to quotes, so an over-estimate) bound the nesting of blocks and flows."""
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return indent + deepest < MAX_NESTING


def load_yaml(path: Path) -> Any:
    """Read a YAML file with the safe loader (libyaml's, 10x faster, where the text cannot nest
    deeply enough to exhaust its recursive composer; the pure-Python one otherwise, which fails
    cleanly); syntax errors name the file and line."""
    text = _read_text(path)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if _shallow(text) else yaml.SafeLoader
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"malformed YAML{where}: {problem}", file=str(path)) from None
    except RecursionError:
        raise SpecError(f"the spec is nested more than {MAX_NESTING} levels deep",
                        file=str(path)) from None
    check_size_and_depth(doc, str(path))
    return doc


def file_variants(path: Path) -> dict[str, dict]:
    """The variants a spec file defines, by name (raw, before ``extends`` resolution). Parsed
    once per version of the file (its size and modification time): a sweep over a file of a
    thousand variants reads it once, not once per variant. Read-only: callers copy what they keep."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, a NUL in the name ...
        return _file_variants(path)  # load_yaml says what is wrong with the path
    return _cached_variants(os.path.realpath(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _cached_variants(path: str, mtime_ns: int, size: int) -> dict[str, dict]:
    return _file_variants(Path(path))


def _file_variants(path: Path) -> dict[str, dict]:
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise SpecError(f"a spec file must hold a mapping, got {type(doc).__name__}", file=str(path))
    if "variants" not in doc:
        name = doc.get("name")
        if name is not None and not isinstance(name, str):
            raise SpecError(f"must be a string, got {short_repr(name)}", file=str(path), key="name")
        return {name or Path(path).stem: doc}
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
                pretrained: bool = False, reference: Optional[str] = None) -> list[str]:
    """Sorted registered names matching any of the fnmatch ``pattern``s (and ``family``; with
    ``pretrained``, only those with published weights: :func:`resfam.hub.published`; with
    ``reference``, only those that library (``"timm"``, ``"torchvision"``) builds under the same
    name: the spec's ``reference:``)."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern) \
        if isinstance(pattern, (list, tuple, set)) else [pattern]
    if not all(isinstance(p, str) for p in patterns) or (family is not None and not isinstance(family, str)):
        raise ArgumentError("list_models takes fnmatch patterns (strings) and a family name, got "
                            f"{short_repr(pattern)}, {short_repr(family)}")
    names = [n for n in _catalog() if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if family is not None:
        names = [n for n in names if _registered_spec(n).family == family]
    if reference is not None:
        if reference not in ("timm", "torchvision"):
            raise ArgumentError(f"reference must be 'timm' or 'torchvision', got {short_repr(reference)}")
        names = [n for n in names if reference in references(n)]
    if pretrained:
        from .hub import published

        names = [n for n in names if published(n)]
    return sorted(names)


def references(name: str) -> list[str]:
    """The libraries that build the bundled variant ``name`` under the same name (its spec's
    ``reference:``); none for a name that is not bundled (a user's spec)."""
    return list(_registered_spec(name).model.reference) if name in _catalog() else []


def list_families() -> list[str]:
    return sorted({_registered_spec(n).family for n in _catalog()})
