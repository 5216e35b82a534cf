"""Each option of the paper's ablations and baselines, trained on digits from the command line."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from bench.cli import main

FAST = ["--dataset", "digits", "--arch", "resnet32", "--epochs", "1", "--batch-size", "512"]


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ISDA_BENCH_RESULTS", raising=False)
    return tmp_path


def _train(argv: list[str], out: str) -> tuple[dict, dict, list[dict]]:
    assert main(["train", *FAST, *argv, "--out", out]) == 0
    config = yaml.safe_load(open(f"{out}/config.yaml"))
    result = json.loads(open(f"{out}/result.json").read())
    with open(f"{out}/metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert result["status"] == "completed" and len(rows) == 1
    return config, result, rows


@pytest.mark.parametrize("argv, recorded", [
    (["--method", "isda", "--set", "cov_mode=identity"], {"cov_mode": "identity"}),
    (["--method", "isda", "--set", "cov_mode=shared"], {"cov_mode": "shared"}),
    (["--method", "isda", "--set", "lambda_schedule=constant"], {"lambda_schedule": "constant"}),
    (["--method", "explicit", "--set", "explicit_samples=4"], {"explicit_samples": 4, "lambda0": 0.5}),
    (["--method", "focal"], {"focal_alpha": 0.5, "focal_gamma": 1.0}),
    (["--method", "randaugment", "--set", "randaugment_m=5"], {"randaugment_n": 2, "randaugment_m": 5}),
    (["--method", "isda+autoaugment"], {"method": "isda+autoaugment"}),
    (["--method", "tv_autoaugment"], {"method": "tv_autoaugment"}),
])
def test_each_option_trains_and_is_recorded_in_config_yaml(scratch, argv, recorded):
    config, result, rows = _train(argv, "run")
    assert {k: config[k] for k in recorded} == recorded
    params = {k: v for k, v in recorded.items() if k not in ("randaugment_n", "randaugment_m")}
    assert {k: result[k] for k in params} == params  # method parameters are in result.json too


def test_constant_lambda_is_lambda0_in_the_first_epoch(scratch):
    _, _, constant = _train(["--method", "isda", "--set", "lambda_schedule=constant"], "constant")
    _, _, linear = _train(["--method", "isda"], "linear")
    assert float(constant[0]["lambda"]) == 0.5 and float(linear[0]["lambda"]) == 0.0


def test_explicit_repeats_bit_identically_on_the_cpu(scratch):
    argv = ["--method", "explicit", "--set", "explicit_samples=3", "--set", "lambda_schedule=constant"]
    _, first, rows1 = _train(argv, "a")
    _, again, rows2 = _train(argv, "b")
    timing = ("epoch_time_s",)
    assert [{k: v for k, v in r.items() if k not in timing} for r in rows1] == [
        {k: v for k, v in r.items() if k not in timing} for r in rows2]
    assert first["last10_test_error"] == again["last10_test_error"]


@pytest.mark.parametrize("argv, needle", [
    (["--method", "isda", "--set", "cov_mode=bogus"], "cov_mode: 'bogus'"),
    (["--method", "isda", "--set", "lambda_schedule=sometimes"], "lambda_schedule: 'sometimes'"),
    (["--method", "explicit", "--set", "explicit_samples=0"], "explicit_samples: 0"),
    (["--method", "focal", "--set", "focal_alpha=2"], "focal_alpha: 2"),
    (["--method", "randaugment", "--set", "randaugment_m=40"], "randaugment_m: 40"),
    (["--method", "ce", "--set", "explicit_samples=4"], "explicit_samples: 4"),
    (["--set", "recipe=neurips"], "recipe: 'neurips'"),
])
def test_bad_values_are_one_line_exit_2_and_nothing_written(scratch, capsys, argv, needle):
    assert main(["train", *FAST, *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err and "Traceback" not in err
    assert list(scratch.iterdir()) == []
