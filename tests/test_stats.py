"""bench.results.stats against independent computations (scipy, numpy, brute-force loops)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.results import stats

RNG = np.random.default_rng(7)
CASES = [
    (RNG.normal(7.0, 0.2, 5), RNG.normal(7.4, 0.3, 5)),
    (RNG.normal(30.0, 0.5, 3), RNG.normal(31.0, 0.1, 8)),
    (np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0])),  # ties
]


@pytest.mark.parametrize("a,b", CASES)
def test_mean_std(a, b):
    assert stats.mean(a) == pytest.approx(np.mean(a))
    assert stats.sample_std(a) == pytest.approx(np.std(a, ddof=1))
    s = stats.summarize(b, reps=500)
    assert (s.n, s.mean, s.std) == (len(b), pytest.approx(np.mean(b)), pytest.approx(np.std(b, ddof=1)))


def test_nan_ignored_and_small_n():
    x = [1.0, float("nan"), None, 3.0]
    assert stats.mean(x) == 2.0
    assert stats.sample_std(x) == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert math.isnan(stats.sample_std([4.2]))
    assert math.isnan(stats.mean([]))
    assert stats.summarize([1.0, 2.0], reps=100).small_n
    assert not stats.summarize([1.0, 2.0, 3.0], reps=100).small_n
    assert all(math.isnan(v) for v in stats.bootstrap_ci([5.0]))


@pytest.mark.parametrize("a,b", CASES)
def test_welch_matches_scipy(a, b):
    expected = sps.ttest_ind(a, b, equal_var=False).pvalue
    assert stats.welch_p(a, b) == pytest.approx(expected, rel=1e-10)
    assert stats.welch_p(b, a) == pytest.approx(expected, rel=1e-10)


def test_welch_degenerate():
    assert math.isnan(stats.welch_p([1.0], [2.0, 3.0]))
    assert math.isnan(stats.welch_p([1.0, 1.0], [1.0, 1.0]))


@pytest.mark.parametrize("a,b", CASES)
def test_prob_improvement_brute_force(a, b):
    total = 0.0
    for x, y in itertools.product(a, b):
        total += 1.0 if x < y else (0.5 if x == y else 0.0)
    expected = total / (len(a) * len(b))
    assert stats.prob_improvement(a, b) == pytest.approx(expected)
    # Swapping the roles gives the complement.
    assert stats.prob_improvement(b, a) == pytest.approx(1 - expected)


def test_prob_improvement_matches_mann_whitney():
    # P(X<Y) + ½P(X=Y) = U_Y / (n_x n_y), with U_Y the Mann–Whitney U of Y against X.
    a, b = CASES[2]
    u_b = sps.mannwhitneyu(b, a, alternative="two-sided").statistic
    assert stats.prob_improvement(a, b) == pytest.approx(u_b / (len(a) * len(b)))


def _loop_bootstrap(x: np.ndarray, reps: int, seed: int, level: float) -> tuple[float, float]:
    # Independent implementation: a plain loop with the standard library's generator.
    import random

    r = random.Random(seed)
    means = sorted(sum(r.choice(list(x)) for _ in x) / len(x) for _ in range(reps))
    return (float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2)))


@pytest.mark.parametrize("a,b", CASES)
def test_bootstrap_ci(a, b):
    lo, hi = stats.bootstrap_ci(a, reps=20_000, seed=3)
    ref_lo, ref_hi = _loop_bootstrap(a, reps=20_000, seed=11, level=0.95)
    # Two different random streams: equal up to Monte-Carlo error (a small fraction of the spread).
    tol = 0.1 * np.std(a, ddof=1) + 1e-9
    assert lo == pytest.approx(ref_lo, abs=tol) and hi == pytest.approx(ref_hi, abs=tol)
    assert lo <= np.mean(a) <= hi
    assert stats.bootstrap_ci(a, reps=2000, seed=5) == stats.bootstrap_ci(a, reps=2000, seed=5)  # seeded
    # The interval lies within the data's range and narrows at a lower level.
    lo80, hi80 = stats.bootstrap_ci(a, level=0.8, reps=20_000, seed=3)
    assert a.min() <= lo <= lo80 <= hi80 <= hi <= a.max()


def test_bootstrap_ci_against_scipy():
    a = CASES[0][0]
    ref = sps.bootstrap(
        (a,), np.mean, n_resamples=20_000, method="percentile", random_state=1
    ).confidence_interval
    lo, hi = stats.bootstrap_ci(a, reps=20_000, seed=2)
    tol = 0.1 * np.std(a, ddof=1)
    assert lo == pytest.approx(ref.low, abs=tol) and hi == pytest.approx(ref.high, abs=tol)


def test_compare():
    a, b = CASES[1]
    c = stats.compare(a, b, reps=5000, seed=0)
    assert c.gap == pytest.approx(np.mean(a) - np.mean(b))
    assert c.p_value == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert c.gap_ci_low < c.gap < c.gap_ci_high
    assert not c.small_n
    assert stats.compare([1.0, 2.0], [3.0, 4.0, 5.0], reps=100).small_n
