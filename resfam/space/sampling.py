"""Samples of a design space, flops-matched: rejection sampling into the space's complexity band
with the analytic counter (Radosavovic et al. 2020, Sec. 3.1: models are sampled in a band, e.g.
360-400 MF; NDS, Sec. 4, controls complexity the same way).

Every draw comes from one ``random.Random(seed)``: the same space, seed and band give the same
designs in the same order. A draw outside the band, or against a ``nondecreasing`` constraint, is
rejected and counted; the acceptance rate is reported. Per-stage keys constrained to be
``nondecreasing`` are drawn and sorted (the distribution rejection would give wherever the drawn
values differ) and checked again after the rules. A band that accepts nothing within the
draw budget fails with a :class:`resfam.errors.SpecError` that gives the complexity range the
draws did reach, so the band can be fixed: it never loops for ever.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import ArgumentError, SpecError, short_repr
from ..spec.regnet import compatible_widths, regnet_stages
from .definition import Band, Draw, Space, read_space

MAX_SAMPLES = 100_000
EARLY_DRAWS = 2_000  # no sample in band after this many draws: give up and say where draws landed
PROBE_DRAWS = 16


@dataclass
class Design:
    """One sampled network: its drawn (and derived) values, its spec mapping and complexity."""

    name: str
    space: str
    values: dict
    spec: dict
    gmacs: float
    params: float  # millions
    acts: float  # millions

    def row(self) -> dict:
        """A flat row: name, space, complexity, the total depth ``blocks``, then every drawn
        value (per-stage lists as key.i)."""
        depth = self.spec["stages"]["depth"]
        return dict(model=self.name, space=self.space, gmacs=self.gmacs, params=self.params,
                    acts=self.acts, blocks=sum(depth) if isinstance(depth, list) else depth,
                    **flatten(self.values))


@dataclass
class Sample:
    """What :func:`sample` returns for one space."""

    space: str
    seed: int
    band: str
    draws: int
    designs: list[Design] = field(default_factory=list)

    @property
    def acceptance(self) -> float:
        return len(self.designs) / self.draws if self.draws else 0.0


def flatten(values: dict) -> dict:
    """Per-stage lists as ``key.0``, ``key.1``, ..."""
    out = {}
    for key, value in values.items():
        if isinstance(value, list):
            out.update({f"{key}.{i}": v for i, v in enumerate(value)})
        else:
            out[key] = value
    return out


def _get(mapping: dict, key: str):
    node = mapping
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(mapping: dict, key: str, value) -> None:
    parts = key.split(".")
    node = mapping
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _per_stage(value, n: int, space: Space, key: str) -> list:
    """``value`` for each of ``n`` stages: one value for all, or a list of ``n``."""
    if not isinstance(value, list):
        return [value] * n
    if len(value) != n:
        raise space.error(f"{short_repr(value)} is neither one value nor one per stage ({n})", key=key)
    return list(value)


def compose(space: Space, rng: random.Random, forced: Optional[tuple[str, Any]] = None) -> Optional[tuple[dict, dict]]:
    """(values, spec mapping) of one draw, or None when a constraint rejects it. ``forced``:
    (key, value) drawn as given (the load check's corners)."""
    d = space.d
    mapping = copy.deepcopy(d.base)
    values: dict = {}
    rules = list(d.rules)

    def pick(key: str, draw) -> Any:
        if forced is not None and forced[0] == key:
            return forced[1]
        return draw.draw(rng) if isinstance(draw, Draw) else draw

    stages = mapping.setdefault("stages", {})
    if rules and rules[0].rule == "regnet":
        r = rules.pop(0)
        params = {k: pick(f"rules.0.{k}", getattr(r, k)) for k in ("w0", "wa", "wm", "depth")}
        try:
            depths, widths = regnet_stages(params["w0"], params["wa"], params["wm"], params["depth"], r.quantum)
        except ValueError as e:
            raise space.error(f"the regnet rule: {e}", key="rules.0") from None
        if len(depths) > r.max_stages:
            return None
        n = len(depths)
        stages.update(depth=depths, width=widths, stride=[r.stride] * n)
        values.update({f"regnet.{k}": v for k, v in params.items()})
    elif d.stages is not None:
        n = pick("stages", d.stages)
        base = stages.get("stride")
        first = base[0] if isinstance(base, list) and base else 1
        stages["stride"] = [first] + [2] * (n - 1)
        values["stages"] = n
    else:
        n = len(stages["stride"])
    for key, draw in d.keys.items():
        if forced is not None and forced[0] == key:
            v = [forced[1]] * n if draw.per_stage else forced[1]
        else:
            v = [draw.draw(rng) for _ in range(n)] if draw.per_stage else draw.draw(rng)
            if draw.per_stage and key in d.constraints.nondecreasing:
                v.sort()  # the ordered draw: rejection's distribution for distinct values, without the waste
        values[key] = v
        _set(mapping, key, [v] * n if key.startswith("stages.") and not draw.per_stage else v)
    for i, r in enumerate(rules, start=len(d.rules) - len(rules)):
        if r.rule == "doubling":
            w = pick(f"rules.{i}.width", r.width)
            stages["width"] = [int(w * r.factor * 2 ** s) for s in range(n)]
            values["doubling.width"] = w
        elif r.rule == "compatible":
            block = mapping.get("block") if isinstance(mapping.get("block"), dict) else {}
            widths = _per_stage(stages.get("width"), n, space, "stages.width")
            exps = _per_stage(block.get("expansion", 4), n, space, "block.expansion")
            gws = _per_stage(block.get("group_width", 1), n, space, "block.group_width")
            if not all(isinstance(v, int) and v > 0 for v in exps + gws + widths):
                raise space.error("the compatible rule needs whole stage widths, block.expansion and "
                                  "block.group_width", key=f"rules.{i}")
            stages["width"], gws = compatible_widths(widths, exps, gws)
            block["group_width"] = gws if len(set(gws)) > 1 else gws[0]
            mapping["block"] = block
    for key in d.constraints.nondecreasing:
        seq = _get(mapping, key)
        if isinstance(seq, list) and any(b < a for a, b in zip(seq, seq[1:])):
            return None
    return values, mapping


def _spec(space: Space, mapping: dict, values: dict, name: str):
    """The resolved Spec of a draw; an invalid one is the space's error, naming what was drawn."""
    from ..spec.registry import get_spec

    mapping.update(name=name, family=space.name)
    mapping.setdefault("description", f"a sample of the {space.name} design space")
    try:
        return get_spec(mapping)
    except SpecError as e:
        drawn = ", ".join(f"{k}={short_repr(v)}" for k, v in values.items())
        raise space.error(f"a draw gives an invalid network: key '{e.key}': {e.message} "
                          f"(drawn: {drawn})", key=e.key,
                          hint="narrow the draws, or add a rule that keeps them compatible") from None


def probe(space: Space) -> None:
    """The load check: every choice and both ends of every range, each with the other keys drawn
    from seed 0, then :data:`PROBE_DRAWS` seeded draws; each must be a valid spec."""
    rng = random.Random(0)
    forced: list = [None] * PROBE_DRAWS
    d = space.d
    for key, draw in d.keys.items():
        forced += [(key, v) for v in draw.corners()]
    if d.stages is not None:
        forced += [("stages", v) for v in d.stages.corners()]
    for i, r in enumerate(d.rules):
        for k in ("w0", "wa", "wm", "depth", "width"):
            v = getattr(r, k, None)
            if isinstance(v, Draw):
                forced += [(f"rules.{i}.{k}", c) for c in v.corners()]
    for f in forced:
        drawn = compose(space, rng, f)
        if drawn is not None:
            _spec(space, drawn[1], drawn[0], f"{space.name}-probe")


def load(ref, *, check: bool = True) -> Space:
    """A bundled space by name, a ``space:`` YAML file, or a mapping (the ``space:`` value),
    every mistake a SpecError naming file, space and key; ``check`` also draws the probe samples
    (:func:`probe`), so a space that can produce an invalid network fails here."""
    space = read_space(ref)
    if check:
        probe(space)
    return space


def _band(space: Space, overrides: Optional[dict]) -> Band:
    c = space.d.constraints
    band = {k: getattr(c, k) for k in ("gmacs", "params", "acts")}
    for k, v in (overrides or {}).items():
        if k not in band:
            raise ArgumentError(f"band: {k!r} is not a complexity; give gmacs, params or acts")
        band[k] = list(v) if v is not None else None
    try:
        return Band(**band)
    except Exception as e:  # noqa: BLE001 - pydantic's message, on one line
        raise ArgumentError(f"band {short_repr(overrides)}: {str(e).splitlines()[-2].strip()}") from None


def sample(spaces, n: int, *, seed: int = 0, band: Optional[dict] = None, img_size: Optional[int] = None,
           max_draws: Optional[int] = None, on_draw=None) -> list[Sample]:
    """``n`` designs from each space (a bundled name, a file, a mapping or a loaded Space; one
    or a list), in the space's band (``band`` overrides it: ``{"gmacs": (0.36, 0.4)}``),
    counted at ``img_size`` (default: the space's input size; given, it becomes each design's
    ``input_size``, the side it trains at). ``max_draws`` per space
    (default ``1,000 + 200 n``) bounds the work; ``on_draw(space, draws, accepted)`` is called
    after every draw."""
    from ..comparison.analytic import tally

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise ArgumentError(f"n: a whole number of samples from 1 to {MAX_SAMPLES:,}, got {short_repr(n)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ArgumentError(f"seed: a whole number >= 0, got {short_repr(seed)}")
    if max_draws is not None and (isinstance(max_draws, bool) or not isinstance(max_draws, int) or max_draws < 1):
        raise ArgumentError(f"max_draws: a whole number >= 1, got {short_repr(max_draws)}")
    if img_size is not None and (isinstance(img_size, bool) or not isinstance(img_size, int) or not 8 <= img_size <= 1024):
        raise ArgumentError(f"img_size: a whole number from 8 to 1024, got {short_repr(img_size)}")
    refs = spaces if isinstance(spaces, (list, tuple)) else [spaces]
    if not refs:
        raise ArgumentError("sample() needs at least one design space")
    loaded = [load(r) for r in refs]
    names = [s.name for s in loaded]
    if len(set(names)) != len(names):
        raise ArgumentError(f"two spaces are both named {next(x for x in names if names.count(x) > 1)!r}; "
                            "a study keys its designs by space name")
    bands = [_band(s, band) for s in loaded]  # every argument checked before the first draw
    budget = max_draws or 1_000 + 200 * n
    out = []
    for space, b in zip(loaded, bands):
        rng = random.Random(seed)
        result = Sample(space.name, seed, b.describe(), 0)
        reached: dict[str, tuple[float, float]] = {}  # the complexity range the draws reached
        while len(result.designs) < n:
            if result.draws >= budget or (not result.designs and result.draws >= min(EARLY_DRAWS, budget)):
                seen = ", ".join(f"{k} {lo:.4g}-{hi:.4g}" for k, (lo, hi) in reached.items()) or "none passed the constraints"
                raise space.error(f"{len(result.designs)} of {result.draws:,} draws fell in the band "
                                  f"({b.describe()}); the draws reached {seen}", key="constraints",
                                  hint="widen the band (--gmacs / --params / --acts), or raise max_draws")
            result.draws += 1
            drawn = compose(space, rng)
            if drawn is not None:
                values, mapping = drawn
                if img_size:  # the side the band is counted at is the side the designs train at
                    mapping["input_size"] = img_size
                name = f"{space.name}-{len(result.designs):04d}"
                spec = _spec(space, mapping, values, name)
                t = tally(spec, img_size or space.d.input_size)
                counts = dict(gmacs=t.macs / 1e9, params=t.params / 1e6, acts=t.acts / 1e6)
                for k, v in counts.items():
                    lo, hi = reached.get(k, (v, v))
                    reached[k] = (min(lo, v), max(hi, v))
                if b.holds(counts):
                    result.designs.append(Design(name, space.name, values, mapping, **counts))
            if on_draw is not None:
                on_draw(space.name, result.draws, len(result.designs))
        out.append(result)
    return out
