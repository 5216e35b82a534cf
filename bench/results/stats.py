"""Statistics over seeds: what a report may claim from a handful of runs.

Everything takes plain sequences of test errors (percent, lower is better) and ignores NaN
(a diverged run has no error; it is counted by status elsewhere, not averaged here).
With fewer than :data:`SMALL_N` runs an interval or a test is not meaningful, so results
carry ``small_n`` and the report marks them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _sp

SMALL_N = 3
DEFAULT_REPS = 10_000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95

Values = Sequence[float] | np.ndarray


def clean(values: Values) -> np.ndarray:
    """Finite values as a float array (NaN/None/inf dropped)."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    return arr[np.isfinite(arr)]


def mean(values: Values) -> float:
    x = clean(values)
    return float(x.mean()) if x.size else math.nan


def sample_std(values: Values) -> float:
    """Standard deviation with n − 1 in the denominator (NaN for fewer than two values)."""
    x = clean(values)
    if x.size < 2:
        return math.nan
    return float(math.sqrt(((x - x.mean()) ** 2).sum() / (x.size - 1)))


def bootstrap_ci(
    values: Values, level: float = DEFAULT_LEVEL, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: resample the runs with replacement ``reps``
    times and take the (1−level)/2 and (1+level)/2 quantiles of the resampled means.
    Seeded, so a report is reproducible. NaN for fewer than two values."""
    x = clean(values)
    if x.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(reps, x.size))].mean(axis=1)
    alpha = 1.0 - level
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_diff_ci(
    a: Values, b: Values, level: float = DEFAULT_LEVEL, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(a) − mean(b), resampling each group independently
    (the runs of two methods are not paired: seed k of one has nothing to do with seed k of the other)."""
    x, y = clean(a), clean(b)
    if x.size < 2 or y.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    mx = x[rng.integers(0, x.size, size=(reps, x.size))].mean(axis=1)
    my = y[rng.integers(0, y.size, size=(reps, y.size))].mean(axis=1)
    alpha = 1.0 - level
    lo, hi = np.quantile(mx - my, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def welch_p(a: Values, b: Values) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for mean(a) = mean(b).
    NaN when either group has fewer than two runs or both have zero spread."""
    x, y = clean(a), clean(b)
    if x.size < 2 or y.size < 2:
        return math.nan
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se2 = va + vb
    if se2 <= 0:
        return math.nan
    t = (x.mean() - y.mean()) / math.sqrt(se2)
    # Welch–Satterthwaite degrees of freedom.
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    return float(2 * _sp.t.sf(abs(t), df))


def prob_improvement(x: Values, y: Values) -> float:
    """P(X < Y) + ½·P(X = Y) over all pairs, for errors (lower is better), as rliable's
    probability of improvement: the chance that a run of X beats a run of Y."""
    a, b = clean(x), clean(y)
    if a.size == 0 or b.size == 0:
        return math.nan
    less = (a[:, None] < b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(less + 0.5 * ties)


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    @property
    def small_n(self) -> bool:
        return self.n < SMALL_N


def summarize(
    values: Values, level: float = DEFAULT_LEVEL, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED
) -> Summary:
    x = clean(values)
    lo, hi = bootstrap_ci(x, level=level, reps=reps, seed=seed)
    return Summary(n=int(x.size), mean=mean(x), std=sample_std(x), ci_low=lo, ci_high=hi)


@dataclass(frozen=True)
class Comparison:
    """A treatment (ISDA) against a control (CE): gap = mean(treatment) − mean(control),
    negative when the treatment has the lower error."""

    treatment: Summary
    control: Summary
    gap: float
    gap_ci_low: float
    gap_ci_high: float
    p_value: float
    p_improvement: float

    @property
    def small_n(self) -> bool:
        return self.treatment.small_n or self.control.small_n


def compare(
    treatment: Values,
    control: Values,
    level: float = DEFAULT_LEVEL,
    reps: int = DEFAULT_REPS,
    seed: int = DEFAULT_SEED,
) -> Comparison:
    t, c = summarize(treatment, level, reps, seed), summarize(control, level, reps, seed)
    lo, hi = bootstrap_diff_ci(treatment, control, level=level, reps=reps, seed=seed)
    return Comparison(
        treatment=t,
        control=c,
        gap=t.mean - c.mean,
        gap_ci_low=lo,
        gap_ci_high=hi,
        p_value=welch_p(treatment, control),
        p_improvement=prob_improvement(treatment, control),
    )
