"""The reproduction verdict: for every number of the paper that a table puts beside a cell of ours,
whether our runs agree with it, and for every ISDA cell beside its baseline, whether ISDA's gain is
reproduced. What a reader of a reproduction wants first: one line at the top of the report and a
table with one row per result.

The rule (also in the README, "Paper numbers"):

- a result is judged only when each cell of ours it needs has at least ``stats.SMALL_N`` completed
  runs; otherwise it counts as "too few runs";
- a paper number is *reproduced* when a two-sided Welch t-test of our runs (mean, sample std, n)
  against the paper's mean ± std over the runs its caption states does not reject equal means at
  α = :data:`ALPHA`. Where the paper prints no ± or does not say over how many runs, our runs are
  tested against its mean taken as exact (a one-sample t-test, the limit of Welch's test as the
  paper's runs grow);
- ISDA's gain is *reproduced* when our ISDA − baseline difference has the paper's sign and a one-sided
  Welch t-test of our two cells in that direction gives p < α.

Each table records its comparisons as :class:`~bench.report.model.PaperCheck`; a number that two
tables compare with the same runs (the main table's Basic and the ablation's) is judged once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bench.report.citation import PaperValue
from bench.report.model import Cell, PaperCheck, Table, fmt, fmt_p
from bench.results import stats

ALPHA = 0.05
REPRODUCED, NOT_REPRODUCED, TOO_FEW = "reproduced", "not reproduced", "too few runs"
OTHER_TRAINING = "not the paper's training"
RULE = (
    f"Rule: a result is judged where each cell of ours it needs has n ≥ {stats.SMALL_N} completed runs trained "
    "with the paper's budget (the recipe's epochs and batch size, on the whole training set); a cell trained "
    "with another is listed, not judged. "
    f"A paper number is reproduced when a two-sided Welch t-test of our runs against the paper's mean ± std "
    f"(over the runs its caption states) does not reject equal means at the {ALPHA} level; where the paper prints "
    f"no ± or no number of runs, our runs are tested against its mean (one-sample t-test). ISDA's gain is "
    f"reproduced when our ISDA − baseline difference has the paper's sign and a one-sided Welch t-test in "
    f"that direction gives p < {ALPHA}."
)
CAVEAT = (
    "Reproduced means no significant difference, not proven equality: with few runs the test has little "
    "power (the interval of ours − paper says how large a difference it could miss). No correction for "
    f"multiple comparisons: at the {ALPHA} level, about one true match in twenty is judged not reproduced."
)


# The report tables, as the verdict's "In table" column names them.
SHORT_NAMES = {"cifar_main": "main", "augmentation": "augmentation", "regularizers": "regularisers",
               "ablation": "ablation", "lambda_sensitivity": "λ0", "explicit": "explicit",
               "imagenet": "ImageNet (TPAMI)", "imagenet_neurips": "ImageNet (NeurIPS)"}


@dataclass
class Judgement:
    kind: str  # "error" or "gain"
    experiment: str
    what: str
    paper: str
    ours: str
    test: str
    outcome: str
    tables: list[str] = field(default_factory=list)


def _ours_text(values: np.ndarray) -> str:
    if values.size == 0:
        return "none completed"
    if values.size == 1:
        return f"{fmt(float(values.mean()))} (n=1)"
    return f"{fmt(float(values.mean()))} ± {fmt(stats.sample_std(values))} (n={values.size})"


def _paper_text(value: PaperValue) -> str:
    table = value.table
    where = table.name if table else "version not stated"
    runs = f", n={value.runs}" if value.runs and value.std is not None else ""
    spread = f" ± {fmt(value.std)}" if value.std is not None else ""
    return f"{fmt(value.mean)}{spread} ({where}{runs})"


def _other_training(judgement: Judgement, how: tuple[str, ...]) -> Judgement:
    judgement.test, judgement.outcome = "; ".join(how), OTHER_TRAINING
    return judgement


def judge_error(check: PaperCheck) -> Judgement:
    """Is our cell consistent with the paper's number?"""
    ours, pv = check.ours.values, check.paper
    base = Judgement("error", check.experiment, check.what, _paper_text(pv), _ours_text(ours), "–", TOO_FEW)
    if check.ours.off_recipe:
        return _other_training(base, check.ours.off_recipe)
    if ours.size < stats.SMALL_N:
        return base
    m, s = float(ours.mean()), stats.sample_std(ours)
    if pv.std is None or not pv.runs or pv.runs < 2:
        test, name = stats.one_sample_summary(m, s, ours.size, pv.mean), "one-sample t"
    else:
        test, name = stats.welch_summary(m, s, ours.size, pv.mean, pv.std, pv.runs), "Welch"
    base.test = (f"Δ {fmt(test.diff, signed=True)} [{fmt(test.low, signed=True)}, "
                 f"{fmt(test.high, signed=True)}], {name} {fmt_p(test.p)}")
    base.outcome = REPRODUCED if test.p >= ALPHA else NOT_REPRODUCED
    return base


def judge_gain(check: PaperCheck) -> Judgement | None:
    """Is ISDA's gain over its baseline reproduced? None where the check has no baseline or the
    paper's two numbers are equal (no sign to reproduce)."""
    base_check = check.baseline
    if base_check is None or check.paper.mean == base_check.paper.mean:
        return None
    paper_gap = check.paper.mean - base_check.paper.mean
    treat, ctrl = check.ours.values, base_check.ours.values
    what = f"{check.what} − {base_check.what}"
    table = check.paper.table
    paper_text = f"{fmt(paper_gap, signed=True)}" + (f" ({table.name})" if table else "")
    out = Judgement("gain", check.experiment, what, paper_text, "–", "–", TOO_FEW)
    if treat.size and ctrl.size:
        out.ours = f"{fmt(float(treat.mean() - ctrl.mean()), signed=True)} (n={treat.size}, {ctrl.size})"
    if check.ours.off_recipe or base_check.ours.off_recipe:
        return _other_training(out, tuple(dict.fromkeys(check.ours.off_recipe + base_check.ours.off_recipe)))
    if min(treat.size, ctrl.size) < stats.SMALL_N:
        return out
    alternative = "less" if paper_gap < 0 else "greater"
    test = stats.welch_summary(float(treat.mean()), stats.sample_std(treat), treat.size,
                               float(ctrl.mean()), stats.sample_std(ctrl), ctrl.size, alternative)
    out.test = f"one-sided Welch {fmt_p(test.p)}"
    same_sign = test.diff != 0 and (test.diff < 0) == (paper_gap < 0)
    out.outcome = REPRODUCED if same_sign and test.p < ALPHA else NOT_REPRODUCED
    return out


def _identity(check: PaperCheck) -> tuple:
    return check.paper.key, tuple(sorted(check.ours.values.tolist())), check.ours.total


def judge(tables: list[Table]) -> list[Judgement]:
    """One judgement per paper result the tables compare with runs of ours, in table order."""
    found: dict[tuple, Judgement] = {}

    def add(key: tuple, make: Callable[[PaperCheck], Judgement | None], check: PaperCheck, name: str) -> None:
        if key not in found:
            made = make(check)
            if made is None:
                return
            found[key] = made
        if name not in found[key].tables:
            found[key].tables.append(name)

    for t in tables:
        name = SHORT_NAMES.get(t.key, t.key)
        for check in t.checks:
            add(("error", _identity(check)), judge_error, check, name)
            if check.baseline is not None:
                add(("gain", _identity(check), _identity(check.baseline)), judge_gain, check, name)
    return list(found.values())


def counts(judgements: list[Judgement]) -> tuple[int, int, int, int]:
    """(reproduced, not reproduced, too few runs, not the paper's training)."""
    outcomes = [j.outcome for j in judgements]
    return (outcomes.count(REPRODUCED), outcomes.count(NOT_REPRODUCED), outcomes.count(TOO_FEW),
            outcomes.count(OTHER_TRAINING))


def line(judgements: list[Judgement]) -> str | None:
    """The line at the top of the report, or None where no paper result was rerun."""
    if not judgements:
        return None
    k, j, few, other = counts(judgements)
    rest = (f"the rest ({few}) too few runs" if not other else
            f"{few} with too few runs, {other} trained otherwise than the paper")
    return (f"Reproduction: {k} of {len(judgements)} paper results reproduced, {j} not, {rest} "
            f"(table \"Reproduction verdict\"). {RULE}")


def table(judgements: list[Judgement]) -> Table | None:
    """The per-result breakdown, or None where no paper result was rerun."""
    if not judgements:
        return None
    header = ["Experiment", "Result", "Verdict", "Paper", "Ours", "Test", "In table"]
    rows = [[Cell(j.experiment), Cell(j.what if j.kind == "error" else f"gain {j.what}"), Cell(j.outcome),
             Cell(j.paper), Cell(j.ours), Cell(j.test), Cell(", ".join(j.tables))] for j in judgements]
    notes = [RULE, CAVEAT, "Paper: its mean ± std (n: the runs its caption states) or, for a gain, the difference "
             "of its two means. Ours: mean ± sample std over completed runs. Test: for a number, Δ = ours − paper "
             f"with its {100 * (1 - ALPHA):.0f}% interval and the test's p; for a gain, the one-sided p. In table: the "
             "report's tables that show the result."]
    return Table("verdict", "Reproduction verdict: each paper result with runs of ours beside it", header, rows,
                 notes=notes, label_cols=3)
