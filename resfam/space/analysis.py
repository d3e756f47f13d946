"""Design spaces compared by the distributions of their trained models' errors (NDS, Sec. 3-5;
RegNet, Sec. 3.1), from population rows (:mod:`resfam.space.population`).

:func:`compare` returns a :class:`Comparison`: per space its count, best, quartile errors and the
random-search curve under normalized weights; per pair of spaces the KS statistic and p-value on
the normalized EDFs (and on the plain ones); per space and key RegNet's bootstrap interval of the
best value; and the EDF curves the plots draw. Normalization shares one complexity range and one
set of bins across the spaces compared, as NDS normalizes both spaces of a figure over the same
range.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..errors import ArgumentError
from . import stats

METRICS = ("best_test_err", "test_err", "train_eval_err", "train_err")
COMPLEXITY = ("gmacs", "params", "acts")
SEARCH_KS = (1, 2, 4, 8, 16, 32, 64, 128)
NOT_KEYS = {"model", "space", "gmacs", "params", "acts", "seeds", "epochs", "seconds",
            *METRICS, "error"}


@dataclass
class Comparison:
    spaces: list[dict] = field(default_factory=list)  # one row per space
    pairs: list[dict] = field(default_factory=list)  # one row per pair of spaces
    keys: list[dict] = field(default_factory=list)  # one row per (space, key): bootstrap
    curves: dict = field(default_factory=dict)  # space -> {errors, weights, complexity, search}
    meta: dict = field(default_factory=dict)


def drawn_keys(rows: list[dict]) -> list[str]:
    """The drawn values' columns of population rows (everything but names, complexity, results)."""
    return [k for k in dict.fromkeys(k for r in rows for k in r) if k not in NOT_KEYS]


def compare(rows: list[dict], *, metric: str = "best_test_err", complexity: str = "gmacs",
            bins: int = 10, ks: Sequence[int] = SEARCH_KS, keys: Optional[Sequence[str]] = None,
            reps: int = 2500, seed: int = 0) -> Comparison:
    """The NDS analysis of population ``rows`` (module docstring); ``bins`` 0 compares plain EDFs."""
    if metric not in METRICS:
        raise ArgumentError(f"metric {metric!r}: one of {', '.join(METRICS)}")
    if complexity not in COMPLEXITY:
        raise ArgumentError(f"complexity {complexity!r}: one of {', '.join(COMPLEXITY)}")
    usable = [r for r in rows if isinstance(r.get(metric), (int, float))]
    if not usable:
        raise ArgumentError(f"no row has a {metric}: train the population first")
    spaces = list(dict.fromkeys(r["space"] for r in usable))
    by_space = {s: [r for r in usable if r["space"] == s] for s in spaces}
    values = [r[complexity] for r in usable]
    low, high = min(values), max(values)
    out = Comparison(meta=dict(metric=metric, complexity=complexity, bins=bins, range=[low, high],
                               reps=reps, seed=seed))
    for s, group in by_space.items():
        errors, cx = [r[metric] for r in group], [r[complexity] for r in group]
        weights = stats.normalized_weights(cx, bins, low, high) if bins else None
        search = stats.random_search(errors, list(ks), weights)
        q = statistics.quantiles(errors, n=4) if len(errors) > 1 else [errors[0]] * 3
        row = dict(space=s, models=len(group), best=min(errors), q1=q[0], median=q[1], q3=q[2],
                   **{f"search_{k}": v for k, v in zip(ks, search)})
        out.spaces.append(row)
        out.curves[s] = dict(errors=errors, weights=weights, complexity=cx, search=dict(zip(ks, search)))
        for key in (keys if keys is not None else drawn_keys(group)):
            present = [(r[key], r[metric]) for r in group if r.get(key) is not None]
            if len(present) < 2:
                continue
            b = stats.bootstrap_best([v for v, _ in present], [e for _, e in present], reps=reps, seed=seed)
            out.keys.append(dict(space=s, key=key, **b))
    for i, a in enumerate(spaces):
        for b in spaces[i + 1:]:
            ca, cb = out.curves[a], out.curves[b]
            plain = stats.ks_test(ca["errors"], cb["errors"])
            row = dict(a=a, b=b, D_plain=plain["D"], p_plain=plain["p"])
            if bins:
                norm = stats.ks_test(ca["errors"], cb["errors"], ca["weights"], cb["weights"])
                row.update(D=norm["D"], p=norm["p"])
            out.pairs.append(row)
    return out
