"""What a row measures: a resfam build (a registered name, a pattern, a spec file and its
variants, a folder of spec files, or, from Python, a spec mapping or Spec) or another library's
model (``timm:convnext_tiny``, ``tv:resnet50``), each built with its own library, random weights,
nothing downloaded."""
from __future__ import annotations

import fnmatch
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence, Union

from ..errors import ArgumentError, ResfamError, UnknownModelError, did_you_mean, short_repr
from ..spec.registry import file_variants, get_spec, is_spec_path, list_families, list_models

LIBRARIES = {"timm": "timm", "tv": "torchvision", "torchvision": "torchvision"}


@dataclass(frozen=True)
class Target:
    """One row: ``library`` is resfam, timm or torchvision; ``ref`` what resfam resolves (a
    name or ``file.yaml:variant``) or the other library's model name."""

    library: str
    ref: str
    spec: Any = field(default=None, compare=False, repr=False)  # a spec given as data (Python)
    origin: int = -1  # its place in the caller's list: two mappings of one name stay two rows

    @property
    def label(self) -> str:
        return self.ref if self.library == "resfam" else f"{'tv' if self.library == 'torchvision' else 'timm'}:{self.ref}"


def foreign_names(library: str) -> list[str]:
    if library == "timm":
        import timm

        return timm.list_models()
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def _foreign(prefix: str, pattern: str) -> list[Target]:
    library = LIBRARIES[prefix]
    known = foreign_names(library)
    matched = [n for n in known if fnmatch.fnmatchcase(n, pattern)]
    if not matched:
        hint = did_you_mean(pattern, known) or f"see {library}'s list_models()"
        raise ResfamError(f"unknown {library} model '{pattern}' ({hint})")
    return [Target(library, n) for n in matched]


def _spec_file(ref: str) -> list[Target]:
    """``file.yaml`` (every variant it defines), ``file.yaml:*`` / ``:pattern``, ``file.yaml:v``,
    or a folder: every ``.yaml`` / ``.yml`` file in it, by name (a sweep larger than one file's
    1 MiB cap, about 2,700 designs, is written as several files)."""
    from pathlib import Path

    if Path(ref).is_dir():
        files = sorted(p for p in Path(ref).iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise ResfamError(f"{ref}: a folder without .yaml spec files")
        return [t for f in files for t in _spec_file(str(f))]
    path, _, variant = ref.partition(":") if not Path(ref).is_file() else (ref, "", "")
    if variant and not any(ch in variant for ch in "*?["):
        return [Target("resfam", ref)]
    try:
        variants = list(file_variants(Path(path)))
    except ResfamError:
        return [Target("resfam", ref)]  # a broken file fails its own row; the sweep goes on
    if not variant and len(variants) == 1:
        return [Target("resfam", ref)]
    chosen = [v for v in variants if fnmatch.fnmatchcase(v, variant or "*")]
    if not chosen:
        raise ResfamError(f"{path}: no variant matches '{variant}' (variants: {', '.join(variants)})")
    return [Target("resfam", f"{path}:{v}") for v in chosen]


def as_strings(value, what: str) -> list:
    """None: nothing; a string: itself; another iterable (a list, a generator): its items, which
    the caller checks."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        return list(value)
    raise ArgumentError(f"{what}: a name, a pattern, a path or a list of them, got {short_repr(value)}")


def model_list(models) -> list:
    """``models`` as a list: a lone spec mapping or Spec is one model, anything else goes
    through :func:`as_strings`."""
    return [models] if isinstance(models, dict) or _is_spec(models) else as_strings(models, "models")


def _is_spec(value) -> bool:
    """A resolved :class:`resfam.spec.schema.Spec` (none exists before the schema is imported:
    listing names does not import it, nor torch)."""
    schema = sys.modules.get("resfam.spec.schema")
    return schema is not None and isinstance(value, schema.Spec)


def select_targets(models: Optional[Iterable[str]] = None,
                   family: Optional[Union[str, Sequence[str]]] = None) -> list[Target]:
    """Expand names, fnmatch patterns, spec files and ``timm:`` / ``tv:`` names into an ordered
    list; no models and no family means the whole zoo. Unknown names raise one ResfamError with
    close matches, before anything is built."""
    families, models = as_strings(family, "family"), model_list(models)
    bad = [m for m in models if not (isinstance(m, (str, dict)) or _is_spec(m))] + \
        [f for f in families if not isinstance(f, str)]
    if bad:
        raise ArgumentError(f"models are names, patterns, paths, spec mappings or Specs and families "
                            f"are strings, got {short_repr(bad[0])}")
    for fam in families:
        if not list_models(family=fam):
            hint = did_you_mean(fam, list_families()) or f"families: {', '.join(list_families())}"
            raise ResfamError(f"unknown family '{fam}': {hint}")
    known = list_models()
    out: dict[Target, None] = {}  # ordered, without repeats

    def add(targets: Iterable[Target]) -> None:
        out.update(dict.fromkeys(targets))

    for i, ref in enumerate(models):
        if not isinstance(ref, str):  # a spec as data: validated now, before anything is built
            spec = get_spec(ref)
            add([Target("resfam", spec.name, spec=spec, origin=i)])
            continue
        prefix, sep, rest = ref.partition(":")
        if sep and prefix in LIBRARIES and not is_spec_path(prefix):
            add(_foreign(prefix, rest))
        elif is_spec_path(ref):
            add(_spec_file(ref))
        else:
            matched = [n for n in known if fnmatch.fnmatchcase(n, ref)]
            if not matched:
                raise UnknownModelError(ref, known)
            add(Target("resfam", n) for n in matched)
    for fam in families:
        add(Target("resfam", n) for n in list_models(family=fam))
    return list(out) if (models or families) else [Target("resfam", n) for n in known]


@dataclass
class Built:
    model: object
    family: str
    input_size: int
    in_chans: int
    num_classes: int


def resolve(target: Target):
    """The resfam Spec, or None for another library's model (no module built)."""
    if target.spec is not None:
        return target.spec
    return get_spec(target.ref) if target.library == "resfam" else None


def build_target(target: Target, spec=None) -> Built:
    """The model with random weights, in its library's default configuration."""
    if target.library == "resfam":
        from ..factory import build

        spec = spec or resolve(target)
        model = build(spec)
        return Built(model, spec.family, spec.input_size, model.in_chans, model.num_classes)
    if target.library == "timm":
        import timm

        model = timm.create_model(target.ref, pretrained=False)
        chans, _, size = (getattr(model, "pretrained_cfg", None) or {}).get("input_size") or (3, 224, 224)
        return Built(model, "timm", size, chans, getattr(model, "num_classes", 0))
    import torchvision

    model = torchvision.models.get_model(target.ref, weights=None)
    return Built(model, "torchvision", 224, 3, getattr(getattr(model, "fc", None), "out_features", 1000))
