"""Errors a person can act on: each names where the problem is and how to fix it."""
from __future__ import annotations

import difflib
from typing import Iterable


class ResfamError(Exception):
    """Base class of every error resfam raises on purpose."""


def close_matches(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """Candidates that look like ``word`` (best first), for 'did you mean' hints."""
    candidates = list(candidates)
    found = difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)
    if not found:  # a prefix often says more than an edit distance ("resnet5" -> resnet50)
        found = [c for c in sorted(candidates) if c.startswith(word[:4])][:n]
    return found


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


class UnknownModelError(ResfamError, KeyError):
    """A model name that no spec defines; lists close matches."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        hint = did_you_mean(name, known) or "see resfam.list_models()"
        self.message = f"unknown model '{name}': {hint}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class BuildArgumentError(ResfamError, TypeError):
    """A keyword argument to ``resfam.build`` that the network does not take."""


class CheckpointError(ResfamError, ValueError):
    """A checkpoint that cannot be read or does not fit the model."""
