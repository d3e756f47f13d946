"""Errors a person can act on: each names where the problem is and how to fix it."""
from __future__ import annotations

import difflib
import reprlib
from typing import Iterable

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxtuple = 2, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40
LONGEST_NAME = 100  # longer names get no 'did you mean' (difflib is quadratic in length)


class ResfamError(Exception):
    """Base class of every error resfam raises on purpose."""


def short_repr(value) -> str:
    """``repr`` cut to a few dozen characters and two levels, whatever the value's size: error
    messages quote what the user gave without expanding a YAML alias bomb or a huge string."""
    try:
        return _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not replace the real error
        return f"<{type(value).__name__}>"


def short_str(value) -> str:
    """A key or name as text: itself when it is a short string, else :func:`short_repr`."""
    return value if isinstance(value, str) and len(value) <= 60 else short_repr(value)


def close_matches(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Candidates that look like ``word`` (best first), for 'did you mean' hints."""
    if not isinstance(word, str) or len(word) > LONGEST_NAME:
        return []
    candidates = list(candidates)
    # names that continue the word first: 'res2net50' means res2net50_26w_4s more than res2next50
    longer = sorted((c for c in candidates if c.startswith(word) and c != word), key=len)
    found = list(dict.fromkeys(longer[:2] + difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)))
    if not found:  # a prefix often says more than an edit distance ("resnet5" -> resnet50)
        found = [c for c in sorted(candidates) if c.startswith(word[:4])][:n]
    return found[:n]


def first_line(error: BaseException) -> str:
    """An exception's message in one line (its type name when it has none), for one-line
    errors that wrap another library's."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    found = close_matches(word, candidates)
    return f"did you mean {', '.join(repr(f) for f in found)}?" if found else ""


class SpecError(ResfamError, ValueError):
    """A spec that cannot be built: names the file, the variant and the key path."""

    def __init__(self, message: str, *, file: str | None = None, variant: str | None = None,
                 key: str | None = None, hint: str = ""):
        self.message, self.file, self.variant, self.key, self.hint = message, file, variant, key, hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [f"{self.file}" if self.file else None,
                 f"variant '{self.variant}'" if self.variant else None,
                 f"key '{self.key}'" if self.key else None]
        prefix = ": ".join(w for w in where if w)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def located(self, *, file: str | None = None, variant: str | None = None) -> "SpecError":
        """The same error with the file / variant filled in where it was not known yet."""
        return SpecError(self.message, file=self.file or file, variant=self.variant or variant,
                         key=self.key, hint=self.hint)


def _name_hint(name, known: list) -> str:
    """The registered name a near-miss means, where the miss is only its form: spaces around it,
    capitals, another library's prefix (``timm:`` / ``tv:``) or a pretrained tag (``.a1_in1k``)."""
    if not isinstance(name, str) or len(name) > LONGEST_NAME:
        return ""
    text = name.strip()
    library, colon, rest = text.partition(":")
    if colon and library.lower() in ("timm", "tv", "torchvision"):
        if rest.lower() in known:
            owner = "timm" if library.lower() == "timm" else "torchvision"
            return (f"resfam's own name is {rest.lower()!r} (the '{library}:' prefix names "
                    f"{owner}'s model in resfam-compare)")
        text = rest
    base, dot, tag = text.partition(".")
    if dot and base.lower() in known:
        return (f"a pretrained tag is not part of the name: build({base.lower()!r}, "
                f"pretrained='timm:{tag}')")
    if text.lower() in known:
        return f"did you mean {text.lower()!r}? (names are lower case, without spaces)"
    return ""


class UnknownModelError(ResfamError, KeyError):
    """A model name that no spec defines; lists close matches."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        known = list(known)
        hint = _name_hint(name, known) or did_you_mean(name, known) or "see resfam.list_models()"
        self.message = f"unknown model {short_repr(name)}: {hint}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class ArgumentError(ResfamError, TypeError):
    """An argument of the wrong type or value given to a resfam function."""


class BuildArgumentError(ArgumentError):
    """A keyword argument to ``resfam.build`` / ``ResFamNet`` that is unknown, of the wrong type,
    out of range, or that would make a network too large to build."""

    def __init__(self, message: str, *, variant: str | None = None, key: str | None = None,
                 hint: str = "", file: str | None = None):
        self.message, self.variant, self.key, self.hint, self.file = message, variant, key, hint, file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(w for w in (self.file, f"variant '{self.variant}'" if self.variant else None,
                                      f"argument '{self.key}'" if self.key else None) if w)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class CheckpointError(ResfamError, ValueError):
    """A checkpoint that cannot be read or does not fit the model."""

    def __init__(self, message: str, hint: str = ""):
        self.message, self.hint = message, hint
        super().__init__(f"{message} ({hint})" if hint else message)
