"""What a study's numbers support: a mean's confidence interval over seeds and a two-model test.

- :func:`interval`: the mean and the half-width of its Student-t confidence interval,
  ``t_{1-a/2, n-1} * s / sqrt(n)``; one seed has none.
- :func:`compare_pair`: model A against model B on one column of their final epochs: paired by
  seed (a paired t-test on the per-seed differences) where both ran the same seeds, else Welch's
  unequal-variance t-test; the difference of the means, its confidence interval, t, the degrees
  of freedom and the two-sided p-value (scipy.stats). With three seeds a difference of a few
  tenths of a point is rarely significant: the test says so instead of the prose.
"""
from __future__ import annotations

import math
import statistics
from typing import Optional


def interval(values: list[float], level: float = 0.95) -> tuple[float, Optional[float]]:
    """(mean, half-width of the ``level`` confidence interval); the half-width is None for one
    value (no spread to estimate)."""
    from scipy import stats

    n, mean = len(values), statistics.fmean(values)
    if n < 2:
        return mean, None
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)


def final_values(rows: list[dict], model: str, key: str) -> dict[int, float]:
    """seed -> ``key`` at that run's last epoch."""
    last: dict[int, dict] = {}
    for r in rows:
        if r["model"] == model and (r["seed"] not in last or r["epoch"] > last[r["seed"]]["epoch"]):
            last[r["seed"]] = r
    return {seed: r[key] for seed, r in last.items() if r.get(key) is not None}


def compare_pair(rows: list[dict], a: str, b: str, key: str = "test_err", level: float = 0.95) -> dict:
    """Model ``a`` minus model ``b`` on ``key`` at the final epoch (see the module docstring)."""
    from scipy import stats

    va, vb = final_values(rows, a, key), final_values(rows, b, key)
    out = dict(a=a, b=b, key=key, n_a=len(va), n_b=len(vb), level=level)
    if not va or not vb:
        return {**out, "test": "none", "why": f"no final {key} for {a if not va else b}"}
    paired = sorted(va) == sorted(vb) and len(va) > 1
    if paired:
        diffs = [va[s] - vb[s] for s in sorted(va)]
        mean, half = interval(diffs, level)
        if half < 1e-9:  # every seed differs by the same amount (errors are quantised: 1 / test size)
            n = len(diffs)
            return {**out, "diff": mean, "test": "none",
                    "why": f"all {n} seeds differ by exactly {mean:+.2f}: no spread for a t-test "
                           f"(a sign test of {n} seeds cannot go below p = {2 / 2 ** n:.3g})"}
        result = stats.ttest_rel([va[s] for s in sorted(va)], [vb[s] for s in sorted(vb)])
        df = len(diffs) - 1
        test = "paired t (by seed)"
    else:
        xa, xb = list(va.values()), list(vb.values())
        mean = sum(xa) / len(xa) - sum(xb) / len(xb)
        if len(xa) < 2 or len(xb) < 2:
            return {**out, "diff": mean, "test": "none", "why": "a model has one seed: no spread to test against"}
        result = stats.ttest_ind(xa, xb, equal_var=False)
        df = float(result.df)
        se = math.sqrt(stats.tvar(xa) / len(xa) + stats.tvar(xb) / len(xb))
        half = float(stats.t.ppf(0.5 + level / 2, df)) * se
        test = "Welch t"
    statistic, p = float(result.statistic), float(result.pvalue)
    if not math.isfinite(statistic):  # no spread within either model: t is undefined
        return {**out, "diff": mean, "test": "none", "why": "no spread within the models' seeds"}
    return {**out, "diff": mean, "ci_low": None if half is None else mean - half,
            "ci_high": None if half is None else mean + half, "test": test, "t": statistic,
            "df": df, "p": p}


def describe(result: dict) -> str:
    """One line a reader can quote."""
    head = f"{result['a']} - {result['b']}, final {result['key']}"
    if result["test"] == "none":
        return f"{head}: {result.get('diff', float('nan')):+.2f} ({result['why']})"
    ci = f"{round(result['level'] * 100)}% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}]"
    return (f"{head}: {result['diff']:+.2f} points, {ci}; {result['test']}: t = {result['t']:.2f}, "
            f"df = {result['df']:.3g}, p = {result['p']:.3g} (seeds: {result['n_a']} and {result['n_b']})")
