"""The bounds of every number a user gives: run fields (sweeps, ``--set``, ``train`` flags) and
benchmark options (``perf``), in one table, so that a batch of a million images or 100,000 loader
workers is refused as one line wherever it is typed, before anything is allocated or written.

Upper bounds stop typing mistakes, not experiments: each lies far above what the paper's recipes
use (batch 64-256, 300 epochs, a few workers), where the next step is an allocation failure or a
machine full of processes rather than a result.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common.errors import ConfigError


@dataclass(frozen=True)
class Bound:
    """Inclusive (``min``, ``max``) or strict (``above``, ``below``) limits of one number."""

    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None

    def holds(self, value: float) -> bool:
        return ((self.min is None or value >= self.min) and (self.max is None or value <= self.max)
                and (self.above is None or value > self.above) and (self.below is None or value < self.below))

    def allowed(self, what: str = "a value") -> str:
        low, high, above, below = (_num(x) for x in (self.min, self.max, self.above, self.below))
        if low and high:
            return f"{what} from {low} to {high}"
        if low and below:
            return f"{what} in [{low}, {below})"
        parts = [f">= {low}" if low else "", f"> {above}" if above else "", f"<= {high}" if high else "",
                 f"< {below}" if below else ""]
        return f"{what} " + " and ".join(p for p in parts if p)


def _num(x: float | None) -> str:
    """A bound as people write it: 2147483647, 0.5 (not 2.14748e+09); "" for none."""
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


BATCH = Bound(min=2, max=65_536)
BOUNDS: dict[str, Bound] = {
    # run fields (bench.experiment.runconfig)
    # Seeds stay below 2**31 so that every seed derived from them (epoch and rank) fits torch's int64.
    "seed": Bound(min=0, max=2**31 - 1),
    "epochs": Bound(min=1, max=100_000),
    "batch_size": BATCH,
    "lr": Bound(above=0.0),
    "momentum": Bound(min=0.0, below=1.0),  # 1 never forgets a gradient: it diverges
    "weight_decay": Bound(min=0.0),
    "gamma": Bound(above=0.0),
    "schedule_offset": Bound(min=0),
    "drop_rate": Bound(min=0.0, below=1.0),  # 1 drops everything
    "milestones": Bound(min=0),  # each of them, in epochs
    # Thread and worker counts past these are typing mistakes (torch crashes on a million threads;
    # each DataLoader worker is a process).
    "threads": Bound(min=0, max=1024),
    "workers": Bound(min=0, max=256),
    "world_size": Bound(min=1, max=4096),
    # the absolute floor; bench.config also refuses fewer images than the dataset has classes, or more
    # than its training set
    "train_size": Bound(min=1),
    # RandAugment's operations per image, and its magnitude: one of torchvision's 31 bins
    "randaugment_n": Bound(min=1, max=100),
    "randaugment_m": Bound(min=0, max=30),
    # L-Softmax's angular margin m: the paper trains with m from 1 to 4, and the authors' layer
    # (wy1iu/LargeMargin_Softmax_Loss) implements those four only (SINGLE to QUADRUPLE). Far above, cos(mθ)
    # as a polynomial has ~m/2 terms with binomial coefficients: m = 10,000 takes seconds to build, 10⁶ hangs.
    "lsoftmax_margin": Bound(min=1, max=4),
    # a sweep's `resources` (their product is world_size)
    "nodes": Bound(min=1, max=4096),
    "gpus_per_node": Bound(min=1, max=64),
    # a sweep: its grid's runs (each a folder, a process, an array task)
    "runs": Bound(min=1, max=100_000),
    # launch: runs at once (--parallel, a sweep's `parallel`), seconds between checks (--poll)
    "parallel": Bound(min=1, max=4096),
    "poll_s": Bound(above=0, max=86_400),
    # benchmark options (bench.perf); --batch, --workers, --seeds, --epochs are the run fields'
    "images": Bound(min=256, max=1_000_000),  # synthetic CIFAR images held in memory: 3 KB each
    "steps": Bound(min=1, max=1_000_000),
    "blocks": Bound(min=1, max=10_000),
    "warmup": Bound(min=0, max=10_000),
    "repeats": Bound(min=1, max=1_000_000),
    "op_repeats": Bound(min=0, max=1_000_000),  # perf isda-ops: 0 counts ops without timing them
    "classes": Bound(min=1, max=1_000_000),  # perf isda --shape N,C,A: N is a batch size
    "features": Bound(min=1, max=65_536),
    "budget_s": Bound(above=0, max=86_400),  # perf report: CPU seconds a report may take
}


def check(name: str, key: str, value: int | float, what: str = "a value") -> int | float:
    """``value`` if it lies within ``BOUNDS[name]``; else a ConfigError naming ``key`` with the bounds."""
    bound = BOUNDS[name]
    if not bound.holds(value):
        raise ConfigError(key, value, bound.allowed(what))
    return value


def parse_int(key: str, text: str, name: str) -> int:
    """An option's text as an integer within ``BOUNDS[name]``."""
    what = "an integer"
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(key, text, BOUNDS[name].allowed(what)) from None
    if not BOUNDS[name].holds(value):
        raise ConfigError(key, text, BOUNDS[name].allowed(what))
    return value
