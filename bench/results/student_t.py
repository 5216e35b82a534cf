"""Student's t distribution: its upper tail and its quantiles, for positive degrees of freedom
(Welch's are fractional; to about 1e-10 relative up to 10⁴ of them, far more than runs give), in plain
Python.

The report regenerates often and needs nothing else of scipy, whose ``stats`` and ``special`` take a
second and a fifth of a second to import. The tail is the regularized incomplete beta function,

    P(T > t) = ½ · I_x(ν/2, ½),  x = ν / (ν + t²),  t ≥ 0,

evaluated by its continued fraction (modified Lentz), which converges fast where x < (a + 1)/(a + b + 2)
and is used through I_x(a, b) = 1 − I_{1−x}(b, a) elsewhere; quantiles by Newton's method on the tail,
guarded by bisection. tests/test_stats.py checks both against scipy.stats.t.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 4e-16  # two units in the last place: the fraction settles there
_MAX_TERMS = 100_000  # the fraction needs about √(max(a, b)) terms: ν of 10⁸ is still exact


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), without its prefactor."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 given with y = 1 − x (each
    computed without the other's rounding: x near 1 would lose y)."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_x = math.log(x) if x < 0.5 else math.log1p(-y)
    log_y = math.log(y) if y < 0.5 else math.log1p(-x)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * log_x + b * log_y
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` > 0 degrees of freedom."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    t2 = t * t
    tail = 0.5 * _incomplete_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
    return tail if t >= 0 else 1.0 - tail


def _log_pdf(t: float, df: float) -> float:
    return (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)
            - 0.5 * (df + 1.0) * math.log1p(t * t / df))


def quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` > 0 degrees of freedom (0 < q < 1)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"a quantile needs 0 < q < 1, not {q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -quantile(1.0 - q, df)
    upper = 1.0 - q  # P(T > t) sought; the t distribution is symmetric
    lo, hi = 0.0, 1.0
    while sf(hi, df) > upper:
        lo, hi = hi, 2.0 * hi
    # Newton's steps on the tail (its slope is the density), kept inside the bracket [lo, hi] that
    # holds the root: a step that leaves it is replaced by bisection.
    t = 0.5 * (lo + hi)
    for _ in range(200):
        gap = sf(t, df) - upper
        if gap > 0:
            lo = t
        else:
            hi = t
        step = gap / math.exp(_log_pdf(t, df))
        nxt = t + step
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - t) <= 2e-16 * abs(nxt) or nxt in (lo, hi):
            return nxt
        t = nxt
    return t
