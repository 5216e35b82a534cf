"""Statistics over seeds: what a report may claim from a handful of runs.

Everything takes plain sequences of test errors (percent, lower is better) and ignores NaN
(a diverged run has no error; it is counted by status elsewhere, not averaged here).

The rules every table and figure of a report share:

- **Small n.** With fewer than :data:`SMALL_N` runs in a group, no interval, test, probability of
  improvement, winner or outlier is given (:attr:`Comparison.small_n` says so; the report marks it).
- **Intervals.** One method: Student's t interval of a mean, and Welch's t interval of a difference of
  two means (Welch–Satterthwaite degrees of freedom). With 3–5 runs per group a percentile bootstrap
  is far too narrow (three runs have ten distinct resamples, and it ignores that the spread itself is
  estimated), while the t interval keeps its 95 % coverage for normal errors; and Welch's interval
  excludes 0 exactly when Welch's test gives p < 1 − level, so a figure's interval and a table's p
  can never disagree.
- **Outliers.** :func:`outliers`: a run whose error lies more than :data:`OUTLIER_K` robust standard
  deviations (1.4826 × the median absolute deviation) from its group's median, and also more than
  half that median and more than :data:`OUTLIER_MIN_PP` percentage point away. The two floors keep the
  rule from flagging ordinary seed noise when three runs happen to lie close together (the MAD of
  three values is the smaller of the two gaps to the median).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.results import student_t

SMALL_N = 3
DEFAULT_LEVEL = 0.95
ALPHA = 0.05  # the level of a claim that one mean is lower than another (Welch's test)
OUTLIER_K = 5.0
OUTLIER_REL = 0.5  # of the group's median
OUTLIER_MIN_PP = 1.0
_MAD_TO_SD = 1.4826  # the MAD of normal data times this estimates its standard deviation

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


@dataclass(frozen=True)
class TTest:
    """A t-test of a difference from summary statistics: the difference, t, its degrees of freedom, the
    p-value of the alternative asked for, and the two-sided interval of the difference at the level asked for."""

    diff: float
    t: float
    df: float
    p: float
    low: float
    high: float


def _t_test(diff: float, se2: float, df: float, alternative: str, level: float) -> TTest:
    if se2 <= 0:
        # No spread at all: the difference is exactly zero or certain.
        if diff == 0:
            p = 1.0
        elif alternative == "two-sided":
            p = 0.0
        else:
            p = 0.0 if (diff < 0) == (alternative == "less") else 1.0
        return TTest(diff, math.copysign(math.inf, diff) if diff else 0.0, df, p, diff, diff)
    se = math.sqrt(se2)
    t = diff / se
    sf = student_t.sf
    p = {"less": sf(-t, df), "greater": sf(t, df)}.get(alternative, 2 * sf(abs(t), df))
    half = student_t.quantile((1 + level) / 2, df) * se
    return TTest(diff, t, df, p, diff - half, diff + half)


def welch_summary(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int, alternative: str = "two-sided",
                  level: float = DEFAULT_LEVEL) -> TTest:
    """Welch's t-test of mean 1 − mean 2 from summary statistics (sample std, n ≥ 2 each), with
    Welch–Satterthwaite degrees of freedom; ``alternative`` "less" tests mean 1 < mean 2."""
    v1, v2 = s1 * s1 / n1, s2 * s2 / n2
    se2 = v1 + v2
    denom = (v1 * v1 / (n1 - 1) if v1 else 0.0) + (v2 * v2 / (n2 - 1) if v2 else 0.0)
    df = se2 * se2 / denom if denom > 0 else float(n1 + n2 - 2)
    return _t_test(m1 - m2, se2, df, alternative, level)


def one_sample_summary(m: float, s: float, n: int, mu: float, level: float = DEFAULT_LEVEL) -> TTest:
    """Two-sided one-sample t-test of mean = ``mu`` from the sample's mean, std and n."""
    return _t_test(m - mu, s * s / n, float(n - 1), "two-sided", level)


def t_ci(values: Values, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean: mean ± t(n − 1) · s / √n. NaN for fewer than two values."""
    x = clean(values)
    if x.size < 2:
        return (math.nan, math.nan)
    half = student_t.quantile((1 + level) / 2, x.size - 1) * sample_std(x) / math.sqrt(x.size)
    return (float(x.mean()) - half, float(x.mean()) + half)


def _welch(a: Values, b: Values, level: float = DEFAULT_LEVEL) -> TTest | None:
    """Welch's test of mean(a) − mean(b) from the runs (:func:`welch_summary`); None when either group
    has fewer than two runs."""
    x, y = clean(a), clean(b)
    if x.size < 2 or y.size < 2:
        return None
    return welch_summary(float(x.mean()), sample_std(x), x.size, float(y.mean()), sample_std(y), y.size,
                         level=level)


def welch_ci(a: Values, b: Values, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Welch's t interval of mean(a) − mean(b) (the runs of two methods are not paired: seed k of one
    has nothing to do with seed k of the other). NaN when either group has fewer than two runs;
    the difference itself when neither has any spread."""
    test = _welch(a, b, level)
    return (math.nan, math.nan) if test is None else (test.low, test.high)


def welch_p(a: Values, b: Values) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) for mean(a) = mean(b).
    NaN when either group has fewer than two runs or both have zero spread."""
    test = _welch(a, b)
    no_spread = test is not None and test.low == test.high  # the interval of a gap known exactly
    return math.nan if test is None or no_spread else test.p


def prob_improvement(x: Values, y: Values) -> float:
    """P(X < Y) + ½·P(X = Y) over all pairs, for errors (lower is better), as rliable's
    probability of improvement: the chance that a run of X beats a run of Y."""
    a, b = clean(x), clean(y)
    if a.size == 0 or b.size == 0:
        return math.nan
    less = (a[:, None] < b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(less + 0.5 * ties)


def outliers(values: Values) -> np.ndarray:
    """Which of ``values`` are outliers of their group (the rule in the module's docstring); all False
    with fewer than SMALL_N finite values. NaN values are never outliers."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float).ravel()
    x = arr[np.isfinite(arr)]
    if x.size < SMALL_N:
        return np.zeros(arr.shape, dtype=bool)
    median = float(np.median(x))
    robust_sd = _MAD_TO_SD * float(np.median(np.abs(x - median)))
    off = np.abs(arr - median)
    floor = max(OUTLIER_REL * abs(median), OUTLIER_MIN_PP)
    with np.errstate(invalid="ignore"):
        return np.isfinite(arr) & (off > OUTLIER_K * robust_sd) & (off > floor)


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


def summarize(values: Values, level: float = DEFAULT_LEVEL) -> Summary:
    x = clean(values)
    lo, hi = t_ci(x, level=level)
    return Summary(n=int(x.size), mean=mean(x), std=sample_std(x), ci_low=lo, ci_high=hi)


@dataclass(frozen=True)
class Comparison:
    """A treatment (ISDA) against a control (CE): gap = mean(treatment) − mean(control),
    negative when the treatment has the lower error; Welch's interval and test of the gap."""

    treatment: Summary
    control: Summary
    gap: float
    gap_ci_low: float
    gap_ci_high: float
    p_value: float
    p_improvement: float

    @property
    def small_n(self) -> bool:
        """Fewer than SMALL_N runs on either side: the interval, p and P are not meaningful."""
        return self.treatment.small_n or self.control.small_n

    @property
    def pairs(self) -> int:
        """The treatment × control pairs of runs that ``p_improvement`` is counted over."""
        return self.treatment.n * self.control.n


def compare(treatment: Values, control: Values, level: float = DEFAULT_LEVEL) -> Comparison:
    t, c = summarize(treatment, level), summarize(control, level)
    lo, hi = welch_ci(treatment, control, level=level)
    return Comparison(
        treatment=t,
        control=c,
        gap=t.mean - c.mean,
        gap_ci_low=lo,
        gap_ci_high=hi,
        p_value=welch_p(treatment, control),
        p_improvement=prob_improvement(treatment, control),
    )


def lower_supported(a: Values, b: Values) -> bool:
    """Whether the data support mean(a) < mean(b): both groups have SMALL_N runs or more, a's mean
    is lower, and Welch's test gives p < ALPHA."""
    x, y = clean(a), clean(b)
    if x.size < SMALL_N or y.size < SMALL_N or not x.mean() < y.mean():
        return False
    p = welch_p(x, y)
    return math.isfinite(p) and p < ALPHA
