"""The statistics of design-space comparison (Radosavovic et al. 2019, NDS, Sec. 3-5; 2020,
RegNet, Sec. 3.1), on plain lists: no torch.

- :func:`edf`: the error EDF, ``F(e) = sum_i w_i 1[e_i < e]`` (NDS Eq. 1 with ``w_i = 1/n``).
- :func:`normalized_weights`: NDS's normalized EDF (Sec. 3.2, Eq. 2): the complexity range cut
  into ``k`` equal bins, each model weighted ``1 / (k n_j)`` (``n_j`` models in its bin), so every
  bin weighs ``1/k`` whatever the space's complexity distribution; every bin must hold a model.
- :func:`ks_test`: the Kolmogorov-Smirnov statistic ``D = sup_e |F_1(e) - F_2(e)|`` and its
  p-value (NDS Sec. 3.3, Fig. 7); unweighted it is ``scipy.stats.ks_2samp``; weighted, D is
  computed on the weighted EDFs and p from the same distribution at Kish's effective sizes
  ``(sum w)^2 / sum w^2`` (an approximation, said so in the result).
- :func:`bootstrap_best`: RegNet's empirical bootstrap of the best value of a key: draw a
  quarter of the models with replacement, keep the best model's value, repeat 2,500 times; the
  95% interval of those values (pycls ``sweep/analysis.py``).
- :func:`random_search`: the expected minimum error of ``k`` models drawn with replacement under
  the weights (NDS Fig. 6 right), in closed form:
  ``E[min_k] = sum_i e_(i) [(1 - F_{i-1})^k - (1 - F_i)^k]`` over the sorted errors, ``F_i`` the
  weight of the ``i`` best.
"""
from __future__ import annotations

import math
import random
from typing import Optional, Sequence

from ..errors import ArgumentError


def _check(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if not out:
        raise ArgumentError(f"{what}: no values")
    if any(math.isnan(v) for v in out):
        raise ArgumentError(f"{what}: a value is NaN")
    return out


def _weights(n: int, weights: Optional[Sequence[float]]) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    w = [float(x) for x in weights]
    if len(w) != n or any(x < 0 for x in w) or not math.isclose(sum(w), 1.0, rel_tol=1e-9):
        raise ArgumentError(f"weights: {n} non-negative numbers summing to 1")
    return w


def edf(errors: Sequence[float], weights: Optional[Sequence[float]] = None,
        at: Optional[Sequence[float]] = None) -> tuple[list[float], list[float]]:
    """(points, F at each): ``F(e) = sum w_i 1[e_i < e]`` at ``at`` (default: just above each
    distinct error, where the EDF steps: F there counts every model with an error <= it)."""
    e = _check(errors, "errors")
    w = _weights(len(e), weights)
    pairs = sorted(zip(e, w))
    if at is None:
        points, out, total = [], [], 0.0
        for value, weight in pairs:
            total += weight
            if points and points[-1] == value:
                out[-1] = total
            else:
                points.append(value)
                out.append(total)
        return points, [min(v, 1.0) for v in out]
    return list(at), [min(1.0, sum(wi for ei, wi in pairs if ei < x)) for x in at]


def normalized_weights(complexity: Sequence[float], bins: int, low: Optional[float] = None,
                       high: Optional[float] = None) -> list[float]:
    """NDS's normalized-EDF weights (module docstring); ``[low, high]`` default to the range of
    ``complexity``. Raises an ArgumentError naming an empty bin (fewer bins, or more models)."""
    c = _check(complexity, "complexity")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ArgumentError(f"bins: a whole number >= 1, got {bins!r}")
    lo = min(c) if low is None else float(low)
    hi = max(c) if high is None else float(high)
    if any(x < lo or x > hi for x in c):
        raise ArgumentError(f"complexity outside [{lo:g}, {hi:g}]")
    width = (hi - lo) / bins
    index = [0 if width == 0 else min(int((x - lo) / width), bins - 1) for x in c]
    counts = [index.count(j) for j in range(bins)]
    empty = [j for j, n in enumerate(counts) if n == 0]
    if empty:
        j = empty[0]
        raise ArgumentError(f"normalized EDF: complexity bin {j + 1} of {bins} ([{lo + j * width:.4g}, "
                            f"{lo + (j + 1) * width:.4g}]) holds no model; use fewer bins "
                            f"(NDS: every bin non-empty) or sample more models")
    return [1.0 / (bins * counts[j]) for j in index]


def ks_test(a: Sequence[float], b: Sequence[float], weights_a: Optional[Sequence[float]] = None,
            weights_b: Optional[Sequence[float]] = None) -> dict:
    """{'D', 'p', 'n_a', 'n_b', 'method'}: the two-sample KS test of the error distributions
    (module docstring)."""
    from scipy import stats

    x, y = _check(a, "a"), _check(b, "b")
    if weights_a is None and weights_b is None:
        r = stats.ks_2samp(x, y)
        return dict(D=float(r.statistic), p=float(r.pvalue), n_a=len(x), n_b=len(y), method="ks_2samp")
    wa, wb = _weights(len(x), weights_a), _weights(len(y), weights_b)
    d = _sup_distance(sorted(zip(x, wa)), sorted(zip(y, wb)))
    na = 1.0 / sum(w * w for w in wa)
    nb = 1.0 / sum(w * w for w in wb)
    en = na * nb / (na + nb)
    p = float(stats.kstwo.sf(d, max(1, round(en))))
    return dict(D=d, p=p, n_a=len(x), n_b=len(y), n_eff_a=na, n_eff_b=nb,
                method="weighted EDFs; p at Kish's effective sizes (approximate)")


def _sup_distance(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """sup_e |F_a(e) - F_b(e)| of two weighted EDFs (sorted (value, weight) pairs): both step only
    at the data, so the supremum is reached right after one of the values (a merge of the two)."""
    i = j = 0
    fa = fb = d = 0.0
    while i < len(a) or j < len(b):
        v = min(a[i][0] if i < len(a) else math.inf, b[j][0] if j < len(b) else math.inf)
        while i < len(a) and a[i][0] == v:
            fa += a[i][1]
            i += 1
        while j < len(b) and b[j][0] == v:
            fb += b[j][1]
            j += 1
        d = max(d, abs(fa - fb))
    return d


def bootstrap_best(values: Sequence, errors: Sequence[float], *, fraction: float = 0.25,
                   reps: int = 2500, level: float = 0.95, seed: int = 0) -> dict:
    """RegNet's bootstrap of the best ``values`` (module docstring): {'best' (the best model's
    value), 'low', 'high' (the ``level`` interval of the best values over the resamples; for a
    categorical key, the most frequent), 'share' (how often the most frequent best value won)}."""
    e = _check(errors, "errors")
    if len(values) != len(e):
        raise ArgumentError("values and errors differ in length")
    if not 0 < fraction <= 1 or not 0 < level < 1 or reps < 1:
        raise ArgumentError("fraction in (0, 1], level in (0, 1), reps >= 1")
    rng = random.Random(seed)
    n = len(e)
    k = max(1, round(fraction * n))
    best = []
    for _ in range(reps):
        picks = [rng.randrange(n) for _ in range(k)]
        i = min(picks, key=lambda j: (e[j], j))
        best.append(values[i])
    top = values[min(range(n), key=lambda j: (e[j], j))]
    counts: dict = {}
    for v in best:
        counts[v] = counts.get(v, 0) + 1
    mode, share = max(counts.items(), key=lambda kv: kv[1])
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in best):
        s = sorted(best)
        tail = (1 - level) / 2
        low = s[int(math.floor(tail * (reps - 1)))]
        high = s[int(math.ceil((1 - tail) * (reps - 1)))]
        return dict(best=top, low=low, high=high, mode=mode, share=share / reps)
    return dict(best=top, low=None, high=None, mode=mode, share=share / reps)


def random_search(errors: Sequence[float], ks: Sequence[int], weights: Optional[Sequence[float]] = None) -> list[float]:
    """The expected minimum error of ``k`` models drawn with replacement, for each ``k`` in ``ks``
    (module docstring)."""
    e = _check(errors, "errors")
    w = _weights(len(e), weights)
    pairs = sorted(zip(e, w))
    out = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ArgumentError(f"ks: whole numbers >= 1, got {k!r}")
        total, before = 0.0, 0.0
        for value, weight in pairs:
            after = min(1.0, before + weight)
            total += value * ((1 - before) ** k - (1 - after) ** k)
            before = after
        out.append(total)
    return out
