"""bench.results.stats against independent computations (scipy, numpy, brute-force loops, simulation)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.results import stats, student_t

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
    s = stats.summarize(b)
    assert (s.n, s.mean, s.std) == (len(b), pytest.approx(np.mean(b)), pytest.approx(np.std(b, ddof=1)))


def test_nan_ignored_and_small_n():
    x = [1.0, float("nan"), None, 3.0]
    assert stats.mean(x) == 2.0
    assert stats.sample_std(x) == pytest.approx(np.std([1.0, 3.0], ddof=1))
    assert math.isnan(stats.sample_std([4.2]))
    assert math.isnan(stats.mean([]))
    assert stats.summarize([1.0, 2.0]).small_n
    assert not stats.summarize([1.0, 2.0, 3.0]).small_n
    assert all(math.isnan(v) for v in stats.t_ci([5.0]))


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


@pytest.mark.parametrize("a,b", CASES)
def test_t_intervals_match_scipy(a, b):
    ref = sps.ttest_1samp(a, 0.0).confidence_interval(0.95)
    assert stats.t_ci(a) == pytest.approx((ref.low, ref.high), rel=1e-10)
    ref = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.9)
    assert stats.welch_ci(a, b, level=0.9) == pytest.approx((ref.low, ref.high), rel=1e-10)


def test_welch_interval_excludes_zero_exactly_when_welch_p_is_below_the_level():
    """A figure's interval and a table's p cannot disagree (the bootstrap interval excluded 0 beside p=0.35)."""
    rng = np.random.default_rng(3)
    for _ in range(400):
        n1, n2 = rng.integers(3, 6, size=2)
        a, b = rng.normal(0, 1, n1), rng.normal(rng.normal(0, 1.5), rng.uniform(0.2, 2), n2)
        lo, hi = stats.welch_ci(a, b)
        assert (lo > 0 or hi < 0) == (sps.ttest_ind(a, b, equal_var=False).pvalue < 0.05)


def test_welch_interval_keeps_its_coverage_with_three_runs_a_side():
    """With 3 runs per group (normal errors, unequal spreads) Welch's 95 % interval covers the true gap
    about 95 % of the time; the percentile bootstrap the report used before covers it far less often."""
    rng = np.random.default_rng(11)
    trials, covered, boot = 4000, 0, 0
    for _ in range(trials):
        a, b = rng.normal(1.0, 0.5, 3), rng.normal(0.0, 1.0, 3)
        lo, hi = stats.welch_ci(a, b)
        covered += lo <= 1.0 <= hi
        # The percentile bootstrap of the difference, in a plain loop.
        diffs = np.sort(rng.choice(a, (400, 3)).mean(1) - rng.choice(b, (400, 3)).mean(1))
        boot += diffs[10] <= 1.0 <= diffs[389]
    assert covered / trials > 0.94
    assert boot / trials < 0.85


def _outliers_by_hand(x: list[float]) -> list[bool]:
    med = sorted(x)[len(x) // 2] if len(x) % 2 else sum(sorted(x)[len(x) // 2 - 1: len(x) // 2 + 1]) / 2
    devs = sorted(abs(v - med) for v in x)
    mad = devs[len(x) // 2] if len(x) % 2 else (devs[len(x) // 2 - 1] + devs[len(x) // 2]) / 2
    return [abs(v - med) > 5 * 1.4826 * mad and abs(v - med) > max(0.5 * abs(med), 1.0) for v in x]


@pytest.mark.parametrize("x", [
    [27.1, 27.3, 90.0], [27.1, 27.3, 27.9], [7.0, 8.0, 50.4], [27.0, 27.01, 27.5], [0.0, 0.0, 0.3],
    [20.0, 20.2, 24.0], [6.4, 6.5, 6.3, 6.45, 9.9], [1.0, 2.0], [5.0, 5.0, 5.0], [3.0, 30.0, 3.1, 2.9],
])
def test_outlier_rule_by_hand(x):
    assert list(stats.outliers(x)) == _outliers_by_hand(x) if len(x) >= 3 else not stats.outliers(x).any()


def test_outliers_mostly_quiet_on_ordinary_seed_noise():
    rng = np.random.default_rng(5)
    flagged = sum(stats.outliers(rng.normal(27.0, 0.5, n)).any() for n in (3, 4, 5) for _ in range(2000))
    assert flagged == 0
    assert list(stats.outliers([27.1, np.nan, 27.3, 90.0])) == [False, False, False, True]


def test_lower_supported_needs_enough_runs_and_welch():
    a, b = [1.0, 1.1, 0.9], [2.0, 2.1, 1.9]
    assert stats.lower_supported(a, b) and not stats.lower_supported(b, a)
    assert not stats.lower_supported(a[:2], b)  # n < 3
    assert not stats.lower_supported([1.0, 3.0, 0.5], [2.0, 2.5, 1.5])  # lower, but p > 0.05


def test_compare():
    a, b = CASES[1]
    c = stats.compare(a, b)
    assert c.gap == pytest.approx(np.mean(a) - np.mean(b))
    assert c.p_value == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    assert c.gap_ci_low < c.gap < c.gap_ci_high
    assert not c.small_n
    assert stats.compare([1.0, 2.0], [3.0, 4.0, 5.0]).small_n
    assert c.pairs == len(a) * len(b)


# Student's t (bench.results.student_t) against scipy's, and against closed forms.
DFS = (1.0, 1.5, 2.0, 2.37, 3.0, 4.9, 7.0, 10.0, 23.4, 100.0, 1e3, 1e4)


@pytest.mark.parametrize("df", DFS)
def test_student_t_tail_matches_scipy(df):
    for t in (*np.linspace(-40.0, 40.0, 161), 0.3, 1e-3, 55.0, 1e3, -1e3):
        ref = sps.t.sf(t, df)
        assert student_t.sf(float(t), df) == pytest.approx(ref, rel=1e-10, abs=1e-300), t


@pytest.mark.parametrize("df", DFS)
def test_student_t_quantiles_match_scipy(df):
    for q in (1e-6, 1e-3, 0.025, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.995, 1 - 1e-6):
        assert student_t.quantile(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-10, abs=1e-12), q


def test_student_t_closed_forms():
    """ν = 1 is Cauchy's, ν = 2 has P(T > t) = ½ − t / (2√(2 + t²)): exact where scipy's rounding is not
    (at t = 1e-8 its ν = 1 tail is off in the ninth digit)."""
    for t in (1e-8, 1e-3, 0.5, 3.0, 250.0):
        assert student_t.sf(t, 1.0) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-13)
        assert student_t.sf(t, 2.0) == pytest.approx(0.5 - t / (2 * math.sqrt(2 + t * t)), rel=1e-13)
    for q in (0.6, 0.975, 0.9999):
        assert student_t.quantile(q, 1.0) == pytest.approx(math.tan(math.pi * (q - 0.5)), rel=1e-11)


def test_student_t_refuses_what_it_does_not_define():
    with pytest.raises(ValueError):
        student_t.sf(1.0, 0.0)
    with pytest.raises(ValueError):
        student_t.quantile(1.0, 3.0)
    assert student_t.sf(math.inf, 3.0) == 0.0 and student_t.sf(-math.inf, 3.0) == 1.0


def test_a_report_imports_no_scipy():
    """scipy.stats and scipy.special take most of a second to import: the report path needs neither."""
    import subprocess
    import sys

    code = ("import sys; import bench.cli.commands, bench.report.write, bench.results.collect; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
