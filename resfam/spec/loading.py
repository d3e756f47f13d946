"""Spec files read safely: a regular UTF-8 file of bounded size, YAML through a safe loader,
a bounded number of values and nesting depth, and the variants a file defines.

A spec file holds either one variant (its top-level keys are the spec's) or several under
``variants:`` with an optional file-level ``family:``.
"""
from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from ..errors import SpecError, short_repr

# a spec is a few hundred bytes; these bounds stop hostile files (a YAML alias bomb, /dev/zero,
# a 10,000-deep nesting) with a SpecError instead of a hang or a RecursionError
MAX_FILE_BYTES = 1 << 20
MAX_VALUES = 100_000  # values in a file, each alias counted as often as it is used
MAX_NESTING = 32


def _read_bytes(path: Path) -> bytes:
    """The file's bytes: a regular file of at most MAX_FILE_BYTES. The file is opened
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
    return data


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"spec file is not UTF-8 text (byte {e.start})", file=path,
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


class _StrictConstruction:
    """What resfam asks of YAML beyond the safe loader: a key given twice in one mapping is an
    error (PyYAML keeps the last silently), and a value the safe constructor cannot convert
    (``!!int abc``, ``2001-02-30``, a 5,000-digit integer) is a YAMLError at its node, not a
    ValueError / KeyError / IndexError / AttributeError from inside PyYAML."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base`` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark)
            except TypeError:  # an unhashable key: the constructor says so below
                continue
            if first is not key_node.start_mark:
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       f"duplicate key {short_repr(key)} (first at line "
                                       f"{first.line + 1}); give each key once", key_node.start_mark)
        return super().construct_mapping(node, deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
            kind = node.tag.rsplit(":", 1)[-1]
            raise ConstructorError(None, None, f"cannot read {short_repr(node.value)} as {kind}",
                                   node.start_mark) from None


class _SafeLoader(_StrictConstruction, yaml.SafeLoader):
    pass


class _CSafeLoader(_StrictConstruction, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


def parse_yaml(text: str, file: str) -> Any:
    """Parse spec text with the safe loader (libyaml's, 10x faster, where the text cannot nest
    deeply enough to exhaust its recursive composer; the pure-Python one otherwise, which fails
    cleanly); every problem is a SpecError naming the file and line."""
    loader = _CSafeLoader if _shallow(text) else _SafeLoader
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader either way
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"malformed YAML{where}: {problem}", file=file) from None
    except RecursionError:
        raise SpecError(f"the spec is nested more than {MAX_NESTING} levels deep", file=file) from None
    check_size_and_depth(doc, file)
    return doc


def read_document(path: str) -> Any:
    """A YAML file read as spec files are (a regular UTF-8 file of at most MAX_FILE_BYTES, the
    safe loader, bounded values and nesting): design-space files use it."""
    return parse_yaml(_decode(_read_bytes(Path(path)), path), path)


def file_variants(path: Path) -> dict[str, dict]:
    """The variants a spec file defines, by name (raw, before ``extends`` resolution). Parsed
    once per content of the file: a sweep over a file of a thousand variants parses it once, not
    once per variant, and a file overwritten in place (same size, same modification time) is
    parsed again. Read-only: callers copy what they keep."""
    return _cached_variants(str(path), _read_bytes(path))


@functools.lru_cache(maxsize=16)
def _cached_variants(path: str, data: bytes) -> dict[str, dict]:
    return _variants(parse_yaml(_decode(data, path), path), path)


def _variants(doc: Any, path: str) -> dict[str, dict]:
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
