"""One table of bounds (bench.common.bounds) for run fields and benchmark options: each run field it names is
refused just outside its bounds and taken at them, and a benchmark option for the same quantity is
refused with the same words."""

from __future__ import annotations

import pytest

from bench.common.bounds import BOUNDS
from bench.common.errors import ConfigError
from bench.experiment.resolve import _KINDS, resolve

RUN_FIELDS = sorted(k for k in BOUNDS if k in _KINDS)


# Lower bounds that the dataset raises: a training subset holds one image of each class at least.
DATASET_MIN = {"train_size": 10}  # digits' classes


def _edges(name: str) -> tuple[list, list]:
    """(values just outside the bounds, values at them) for a run field."""
    b = BOUNDS[name]
    integer = _KINDS[name] in ("int", "ints")
    step = 1 if integer else 1e-9
    outside, at = [], []
    if b.min is not None:
        outside.append(b.min - step)
        at.append(DATASET_MIN.get(name, b.min))
    if b.max is not None:
        outside.append(b.max + step)
        at.append(b.max)
    if b.above is not None:
        outside.append(b.above)
    if b.below is not None:
        outside.append(b.below)
    return outside, at


def _spec(name: str, value) -> dict:
    spec = {"dataset": "digits", "arch": "resnet32"}
    if name.startswith("randaugment_"):  # fields of the methods with RandAugment only
        spec["method"] = "randaugment"
    return {**spec, name: [value] if name == "milestones" else value}


def test_every_bounded_run_field_is_in_the_table():
    assert {"seed", "epochs", "batch_size", "threads", "workers", "world_size", "lr", "momentum", "drop_rate",
            "milestones"} <= set(RUN_FIELDS)


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_resolve_refuses_a_run_field_outside_its_bounds(name):
    outside, _ = _edges(name)
    assert outside, name
    for value in outside:
        with pytest.raises(ConfigError) as exc:
            resolve(_spec(name, value))
        assert str(exc.value).startswith(f"{name}: ") and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", RUN_FIELDS)
def test_resolve_takes_a_run_field_at_its_bounds(name):
    for value in _edges(name)[1]:
        cfg = resolve(_spec(name, value))
        got = cfg.to_dict()[name]
        assert got == ([value] if name == "milestones" else value)


@pytest.mark.parametrize("option, field", [(["loader", "--workers", "257"], "workers=257"),
                                           (["epoch", "--workers", "257"], "workers=257"),
                                           (["step", "--batch", "65537"], "batch_size=65537"),
                                           (["accuracy", "--seeds", "0,2147483648"], "seed=2147483648"),
                                           (["accuracy", "--epochs", "100001"], "epochs=100001")])
def test_a_benchmark_option_has_the_bounds_of_its_run_field(tmp_path, monkeypatch, option, field):
    from bench.cli.plans import parse_set
    from bench.perf.commands import main as perf_main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as by_option:
        perf_main([*option, "--device", "cpu", "--out", "o"])
    with pytest.raises(ConfigError) as by_field:
        resolve({"dataset": "digits", **parse_set([field])})
    assert by_option.value.allowed.split(" from ")[1] == by_field.value.allowed.split(" from ")[1]
    assert not (tmp_path / "o").exists()


def test_a_sweep_is_bounded_by_the_same_table(tmp_path):
    from bench.sweep.spec import load_sweep

    for text, key in (("resources: {gpus_per_node: 65}", "resources.gpus_per_node: 65"),
                      ("parallel: 4097", "parallel: 4097"), ("overrides: {threads: 1025}", "threads: 1025")):
        (tmp_path / "s.yaml").write_text(f"grid: {{method: [ce]}}\n{text}\n")
        with pytest.raises(ConfigError, match=key):
            load_sweep(tmp_path / "s.yaml")


def test_the_large_margin_parameter_has_the_bounds_of_the_table():
    """L-Softmax's m: 1 to 4 as the paper and the authors' layer; far above, building the loss hangs."""
    bound = BOUNDS["lsoftmax_margin"]
    assert (bound.min, bound.max) == (1, 4)
    for m in (1, 2, 3, 4):
        assert resolve({"method": "large_margin", "lsoftmax_margin": m}).param("lsoftmax_margin") == m
    for m in (0, 5, 10**6):
        with pytest.raises(ConfigError, match=f"^lsoftmax_margin: {m} is not allowed; an integer >= 1 and <= 4$"):
            resolve({"method": "large_margin", "lsoftmax_margin": m})
