"""bench.results.collect: run directories → one DataFrame; also home of the run-directory fixture writer
that test_report*.py load (it writes exactly what the training engine writes)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.results import collect as results

# ----------------------------------------------------------------------------- fixture writer

_LAMBDA_METHODS = ("isda", "isda+cutout", "isda+autoaugment", "isda+randaugment")


def make_config(
    sweep: str,
    dataset: str,
    arch: str,
    method: str,
    seed: int,
    lambda0: float | None = None,
    epochs: int = 12,
    **extra,
) -> dict:
    isda = method in _LAMBDA_METHODS
    cfg = {
        "sweep": sweep,
        "dataset": dataset,
        "arch": arch,
        "method": method,
        "lambda0": (0.5 if lambda0 is None else lambda0) if isda else None,
        "focal_gamma": 2.0 if method == "focal" else None,
        "cov_mode": "full" if isda else None,
        "seed": seed,
        "epochs": epochs,
        "batch_size": 128,
        "lr": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,
        "schedule": "step",
        "milestones": [6, 9],
        "gamma": 0.1,
        "precision": "auto",
    }
    cfg.update(extra)
    cfg["run_id"] = f"{dataset}-{arch}-{method}-l{cfg['lambda0']}-s{seed}".replace("+", "_")
    return cfg


def write_run(
    sweep_dir: Path,
    cfg: dict,
    level: float,
    *,
    status: str = "completed",
    epochs_done: int | None = None,
    rng: np.random.Generator | None = None,
    corrupt_result: bool = False,
    extra_result: dict | None = None,
) -> Path:
    """A run directory as the engine leaves it. ``level`` is roughly the final test error (%).

    status "completed"/"diverged"/"failed" writes result.json; "interrupted" stops after some epochs
    and leaves checkpoint.pt only, as a killed run does."""
    rng = rng or np.random.default_rng(0)
    run_dir = sweep_dir / cfg["run_id"]
    run_dir.mkdir(parents=True)
    # As the engine does: the resolved config including its run_id.
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    epochs = cfg["epochs"]
    n = epochs if epochs_done is None else epochs_done
    e = np.arange(n)
    test_error = level + 40 * np.exp(-e / 2.0) + rng.normal(0, 0.3, n)
    metrics = pd.DataFrame(
        {
            "epoch": e,
            # The engine's per-epoch learning rate (step decay): a column that shares its name with
            # the run's initial lr, and takes several values within one run.
            "lr": cfg["lr"] * cfg["gamma"] ** np.searchsorted(cfg["milestones"], e + 1, side="right"),
            "lambda": (cfg["lambda0"] or 0) * e / epochs,
            "train_loss": 2 * np.exp(-e / 3),
            "train_error": test_error - 3,
            "test_loss": np.exp(-e / 4) + 0.3,
            "test_error": test_error,
            "epoch_time_s": 1.0 + rng.random(n),
        }
    )
    metrics.to_csv(run_dir / "metrics.csv", index=False)
    (run_dir / "checkpoint.pt").write_bytes(b"not a real checkpoint")
    if status == "interrupted":
        return run_dir
    if corrupt_result:
        (run_dir / "result.json").write_text('{"run_id": "x", "status": "compl')  # truncated
        return run_dir
    last10 = float(test_error[-10:].mean())
    result = {
        "run_id": cfg["run_id"],
        "sweep": cfg["sweep"],
        "dataset": cfg["dataset"],
        "arch": cfg["arch"],
        "method": cfg["method"],
        "lambda0": cfg["lambda0"],
        "seed": cfg["seed"],
        "epochs": epochs,
        "status": status,
        "final_test_error": float(test_error[-1]),
        "best_test_error": float(test_error.min()),
        "last10_test_error": last10,
        "wall_time_s": float(metrics["epoch_time_s"].sum()),
        "images_per_s": 5000.0,
        "device": "cpu",
        "precision": "fp32",
        "torch_version": "2.4.0",
        "git_sha": "abc1234",
        "focal_gamma": cfg["focal_gamma"],
        "cov_mode": cfg["cov_mode"],
        "epochs_done": n,
        "versions": {"torch": "2.4.0", "numpy": np.__version__},
    }
    if status != "completed":
        result.update(
            final_test_error=None,
            best_test_error=None,
            last10_test_error=None,
            failed_epoch=n - 1,
            reason="loss is NaN",
        )
    result.update(extra_result or {})
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


def build_sweep(root: Path, sweep: str = "fx") -> tuple[Path, list[dict]]:
    """The standard fixture: a completed CIFAR-10 pair, and a CIFAR-100 pair with a diverged,
    an interrupted, a planned-but-never-started and a corrupt run. Returns (sweep_dir, planned configs)."""
    rng = np.random.default_rng(1234)
    sweep_dir = root / "results" / sweep
    planned: list[dict] = []
    for seed in range(3):
        for method, level in (("ce", 8.0), ("isda", 7.2)):
            cfg = make_config(sweep, "cifar10", "resnet32", method, seed)
            write_run(sweep_dir, cfg, level + rng.normal(0, 0.2), rng=rng)
            planned.append(cfg)
    specs = [
        ("ce", 0, "completed"),
        ("ce", 1, "completed"),
        ("ce", 2, "diverged"),
        ("isda", 0, "completed"),
        ("isda", 1, "interrupted"),
        ("isda", 2, "pending"),
        ("ce", 3, "corrupt"),
    ]
    for method, seed, status in specs:
        cfg = make_config(sweep, "cifar100", "resnet32", method, seed)
        planned.append(cfg)
        if status == "pending":
            continue
        write_run(
            sweep_dir,
            cfg,
            31.0 if method == "ce" else 30.0,
            rng=rng,
            status="completed" if status == "corrupt" else status,
            epochs_done=5 if status == "interrupted" else None,
            corrupt_result=status == "corrupt",
        )
    return sweep_dir, planned


# ----------------------------------------------------------------------------- tests


@pytest.fixture()
def sweep(tmp_path):
    return build_sweep(tmp_path)


def _row(df: pd.DataFrame, run_id: str) -> pd.Series:
    hit = df[df["run_id"] == run_id]
    assert len(hit) == 1, run_id
    return hit.iloc[0]


def test_collect_statuses(sweep, capsys):
    sweep_dir, planned = sweep
    df = results.collect(sweep_dir, planned=planned)
    # 13 planned, 13 rows: the corrupt one keeps its row, in the state `status` reads (failed), named as damaged.
    assert len(df) == 13
    by_status = df["status"].value_counts().to_dict()
    assert by_status == {"completed": 9, "diverged": 1, "failed": 1, "interrupted": 1, "pending": 1}
    corrupt = _row(df, "cifar100-resnet32-ce-lNone-s3")
    assert corrupt["status"] == "failed" and corrupt["arch"] == "resnet32" and corrupt["seed"] == 3
    assert math.isnan(corrupt["last10_test_error"])
    assert corrupt["damage"].startswith("result.json cannot be read (")
    assert list(df.attrs["damaged"]) == ["cifar100-resnet32-ce-lNone-s3"]
    assert df["damage"].notna().sum() == 1
    assert "cifar100-resnet32-ce-lNone-s3" not in capsys.readouterr().err  # the report names it, once

    interrupted = _row(df, "cifar100-resnet32-isda-l0.5-s1")
    assert interrupted["status"] == "interrupted" and interrupted["epochs_done"] == 5
    assert math.isnan(interrupted["last10_test_error"])
    pending = _row(df, "cifar100-resnet32-isda-l0.5-s2")
    assert pending["arch"] == "resnet32" and pending["lambda0"] == 0.5 and pending["epochs_done"] == 0
    diverged = _row(df, "cifar100-resnet32-ce-lNone-s2")
    assert diverged["status"] == "diverged" and math.isnan(diverged["last10_test_error"])
    assert diverged["failed_epoch"] == 11 and diverged["reason"] == "loss is NaN"


def test_collect_values_match_files(sweep):
    sweep_dir, planned = sweep
    df = results.collect(sweep_dir, planned=planned)
    run_dir = sweep_dir / "cifar10-resnet32-isda-l0.5-s1"
    res = json.loads((run_dir / "result.json").read_text())
    metrics = pd.read_csv(run_dir / "metrics.csv")
    row = _row(df, res["run_id"])
    # The last-10 number is the mean of the last ten epochs' test error.
    assert row["last10_test_error"] == pytest.approx(metrics["test_error"].tail(10).mean())
    for key in ("final_test_error", "best_test_error", "wall_time_s", "images_per_s"):
        assert row[key] == pytest.approx(res[key])
    for key in ("device", "torch_version", "git_sha", "cov_mode", "schedule"):
        assert row[key] == res.get(key, yaml.safe_load((run_dir / "config.yaml").read_text()).get(key))
    # Unknown config keys become columns; lists are kept as JSON text.
    assert json.loads(row["milestones"]) == [6, 9]
    assert row["nesterov"] in (True, np.True_)
    assert list(df.columns[: len(results.CORE_COLUMNS)]) == list(results.CORE_COLUMNS)


def test_collect_without_plan_and_empty(tmp_path, sweep):
    sweep_dir, _ = sweep
    df = results.collect(sweep_dir)
    assert "pending" not in set(df["status"])
    assert len(df) == 12
    empty = results.collect(tmp_path / "nothing-here")
    assert len(empty) == 0 and set(results.CORE_COLUMNS) <= set(empty.columns)


def test_unknown_result_keys_kept(tmp_path):
    sweep_dir = tmp_path / "r"
    cfg = make_config("r", "imagenet", "resnet50", "ce", 0)
    write_run(sweep_dir, cfg, 23.0, extra_result={"last10_top5_test_error": 6.8})
    df = results.collect(sweep_dir)
    assert df.loc[0, "last10_top5_test_error"] == 6.8


def test_write_runs_roundtrip(sweep):
    sweep_dir, planned = sweep
    df = results.collect(sweep_dir, planned=planned)
    paths = results.write_runs(df, sweep_dir)
    assert [p.name for p in paths] == ["runs.parquet", "runs.csv"]
    assert not list(sweep_dir.glob(".*.tmp"))  # atomic writes leave no temporaries
    back = pd.read_parquet(sweep_dir / "runs.parquet")
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    csv = pd.read_csv(sweep_dir / "runs.csv")
    assert list(csv.columns) == list(df.columns)
    assert list(csv["run_id"]) == list(df["run_id"])
    assert list(csv["status"]) == list(df["status"])
    for col in results.NUMERIC_COLUMNS:
        np.testing.assert_allclose(csv[col].to_numpy(float), df[col].to_numpy(float), equal_nan=True)


def test_load_curves(sweep):
    sweep_dir, planned = sweep
    df = results.collect(sweep_dir, planned=planned)
    curves = results.load_curves(sweep_dir, df["run_id"])
    # 9 completed × 12 + diverged 12 + interrupted 5 (+ the corrupt one's metrics are readable: 12);
    # the run never started has none.
    counts = curves.groupby("run_id").size()
    assert counts["cifar100-resnet32-isda-l0.5-s1"] == 5
    assert "cifar100-resnet32-isda-l0.5-s2" not in counts.index
    one = curves[curves["run_id"] == "cifar10-resnet32-ce-lNone-s0"]
    raw = pd.read_csv(sweep_dir / "cifar10-resnet32-ce-lNone-s0" / "metrics.csv")
    np.testing.assert_allclose(one["test_error"].to_numpy(), raw["test_error"].to_numpy())
    assert list(curves.columns[:2]) == ["run_id", "epoch"]
    assert {"lr", "lambda", "train_loss", "test_error"} <= set(curves.columns)
    # A curve's config is its run's row of the table of runs.
    joined = one.merge(df, on="run_id", suffixes=("", "_run"))
    assert set(joined["method"]) == {"ce"} and set(joined["dataset"]) == {"cifar10"}


@dataclasses.dataclass(frozen=True)
class _PlannedConfig:
    """Stands in for the planner's RunConfig: a dataclass whose run_id is a property."""

    dataset: str
    arch: str
    method: str
    seed: int
    milestones: tuple[int, ...] = (3, 6)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @property
    def run_id(self) -> str:
        return f"planned-{self.method}-{self.seed}"


def test_planned_objects_and_nested_keys(sweep):
    sweep_dir, _ = sweep
    found = [{"run_id": d.name} for d in sweep_dir.iterdir() if d.is_dir()]
    df = results.collect(sweep_dir, planned=[_PlannedConfig("cifar10", "resnet32", "isda", 7), *found])
    row = _row(df, "planned-isda-7")
    assert row["status"] == "pending" and row["seed"] == 7 and json.loads(row["milestones"]) == [3, 6]
    # Nested result keys (result.json's "versions") become dotted columns.
    done = df[df["status"] == "completed"]
    assert set(done["versions.torch"]) == {"2.4.0"}
    # epochs_done comes from result.json when the run finished, from metrics.csv while it runs.
    assert set(done["epochs_done"]) == {12}


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    from bench.common.files import atomic_write_text

    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_text() == "{}"


def test_runs_the_sweep_no_longer_plans_are_left_out_with_a_warning(sweep, capsys):
    """A sweep edited after some runs (other epochs, say) keeps their folders; a cell must not
    average them with the runs of the sweep as it is now."""
    sweep_dir, _ = sweep
    every = sorted(results.collect(sweep_dir)["run_id"])  # without a plan: every run found
    capsys.readouterr()
    kept = every[:3]
    df = results.collect(sweep_dir, planned=[{"run_id": r} for r in kept])
    assert sorted(df["run_id"]) == kept
    err = capsys.readouterr().err
    assert "run folder(s)" in err and "left out" in err and every[3] in err and every[0] not in err


def test_a_curve_read_again_after_its_file_changed_is_the_new_one(tmp_path):
    """A report parses each metrics.csv once (bench.results.folders caches it by file identity): a file
    rewritten since, as the trainer rewrites it after every epoch, is read again."""
    from bench.results.folders import read_curve
    from bench.rundir.metrics import write_metrics

    rows = [{"epoch": e, "lr": 0.1, "lambda": 0.0, "train_loss": 1.0, "train_error": 50.0, "test_loss": 1.0,
             "test_error": 40.0 - e, "epoch_time_s": 1.0} for e in range(3)]
    write_metrics(tmp_path, rows[:2])
    first, _ = read_curve(tmp_path)
    assert first is not None and list(first["test_error"]) == [40.0, 39.0]
    write_metrics(tmp_path, rows)
    again, _ = read_curve(tmp_path)
    assert again is not None and list(again["test_error"]) == [40.0, 39.0, 38.0]
    (tmp_path / "metrics.csv").write_text((tmp_path / "metrics.csv").read_text().replace("38.0", "3x.0"))
    assert read_curve(tmp_path) == (None, "metrics.csv's test_error on line 4 is '3x.0', not a number")
