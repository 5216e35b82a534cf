"""The method contract checked where a plugin's mistake is made: its factory and its forward's result
before a command writes anything, its result at every step, and runs of a method whose code has
changed since, which are not done."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.methods import plugins, registry
from bench.rundir.files import RESULT_FILE


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A scratch folder as the current one, and the registry, the plugins and sys.path as they were after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ISDA_BENCH_RESULTS", raising=False)
    for module, name in ((registry, "_LOSSES"), (registry, "_PARAMS"), (plugins, "_LOADED"), (plugins, "_BROKEN")):
        monkeypatch.setattr(module, name, dict(getattr(module, name, {})), raising=False)
    monkeypatch.setattr(plugins, "_SEARCH_PATHS", list(plugins._SEARCH_PATHS))
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("plug_"):
            del sys.modules[name]


HEAD = """
import torch
import torch.nn.functional as F
from torch import nn
from bench.methods import Param, register_loss
"""


def _plugin(folder: Path, name: str, body: str) -> str:
    (folder / f"{name}.py").write_text(HEAD + textwrap.dedent(body))
    return name


def _forward(returns: str) -> str:
    return f"""
    class Loss(nn.Module):
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            self.w = params["plk_w"]

        def forward(self, features, fc, labels, progress):
            logits = fc(features)
            per_sample = self.w * F.cross_entropy(logits.float(), labels, reduction="none")
            loss = per_sample.mean()
            return {returns}

    register_loss("plk", Loss, {{"plk_w": Param(1.0, min=0.0)}})
    """


def _one_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("isda-bench: error:") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


TRAIN = ["--method", "plk", "--epochs", "1", "--batch-size", "256", "--threads", "1", "--out", "run"]


@pytest.mark.parametrize("case, returns, words", [
    ("only_loss", "loss", ["returned a 0-d tensor"]),
    ("swapped", "logits, loss", ["(logits, loss), the wrong way round"]),
    ("per_sample", "per_sample, logits", ["one loss per sample", "return their mean"]),
    ("features", "loss, features", ["the features, not fc(features)"]),
    ("detached", "loss.detach(), logits", ["without a gradient"]),
])
def test_a_forward_that_breaks_the_contract_is_one_line_before_anything_is_written(isolated, capsys, case, returns,
                                                                                     words):
    name = _plugin(isolated, f"plug_{case}", _forward(returns))
    assert main(["train", "--plugin", name, *TRAIN]) == 2
    _one_line(capsys, "method: 'plk'", f"{name}.py", "(loss, logits)", *words)
    assert not (isolated / "run").exists()


@pytest.mark.slow
def test_a_result_that_breaks_the_contract_only_on_real_batches_fails_the_run_in_one_line(isolated, capsys):
    # Keeps the contract on the probe's batch of 8; a run's batches are larger.
    name = _plugin(isolated, "plug_late", _forward("(per_sample if len(labels) > 8 else loss), logits"))
    assert main(["train", "--plugin", name, *TRAIN]) == 2
    _one_line(capsys, "method: 'plk'", "one loss per sample")
    result = json.loads((isolated / "run" / RESULT_FILE).read_text())
    assert result["status"] == "failed" and "one loss per sample" in result["reason"]


FACTORIES = {
    "signature": """
    class Loss(nn.Module):
        def __init__(self, num_classes):
            super().__init__()
    register_loss("plk", Loss)
    """,
    "misspelt_key": """
    class Loss(nn.Module):
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            self.w = params["plk_weight"]
    register_loss("plk", Loss, {"plk_w": 1.0})
    """,
    "function": """
    def make(num_classes, feature_dim, params):
        def loss(features, fc, labels, progress):
            logits = fc(features)
            return F.cross_entropy(logits, labels), logits
        return loss
    register_loss("plk", make)
    """,
    "plain_tensor_state": """
    class Loss(nn.Module):
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            self.centres = torch.zeros(num_classes, feature_dim)
        def forward(self, features, fc, labels, progress):
            logits = fc(features)
            return F.cross_entropy(logits, labels), logits
    register_loss("plk", Loss)
    """,
}
FACTORY_WORDS = {"signature": ["its signature is (num_classes)", "factory(num_classes, feature_dim, params)"],
                 "misspelt_key": ["params['plk_weight']", "not one of its parameters (plk_w)"],
                 "function": ["returned the function", "an nn.Module"],
                 "plain_tensor_state": ["self.centres", "register_buffer"]}


@pytest.mark.parametrize("case", sorted(FACTORIES))
def test_a_broken_factory_is_refused_by_plan_launch_and_train_before_any_job(isolated, capsys, case):
    name = _plugin(isolated, f"plug_{case}", FACTORIES[case])
    (isolated / "s.yaml").write_text(yaml.safe_dump({"plugins": [name], "grid": {"method": ["ce", "plk"]},
                                                     "overrides": {"epochs": 1}}))
    for argv in (["plan", "s.yaml"], ["launch", "s.yaml", "--cluster", "debug"], ["train", "--plugin", name, *TRAIN]):
        assert main(argv) == 2, argv
        _one_line(capsys, "method: 'plk'", *FACTORY_WORDS[case])
    assert sorted(p.name for p in isolated.iterdir() if p.name != "__pycache__") == [f"{name}.py", "s.yaml"]


@pytest.mark.slow
def test_a_run_whose_job_fails_before_training_reads_failed_not_pending(isolated, capsys):
    # The probe's feature size passes; the network's (64) does not: the job fails building the loss.
    name = _plugin(isolated, "plug_big", """
    class Loss(nn.Module):
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            if feature_dim > 16:
                raise MemoryError("too many features")
        def forward(self, features, fc, labels, progress):
            logits = fc(features)
            return F.cross_entropy(logits, labels), logits
    register_loss("plk", Loss)
    """)
    (isolated / "s.yaml").write_text(yaml.safe_dump({"plugins": [name], "grid": {"method": ["plk"]},
                                                     "overrides": {"epochs": 1}}))
    assert main(["launch", "s.yaml", "--cluster", "local"]) == 1
    capsys.readouterr()
    assert main(["status", "s.yaml"]) == 0
    assert "1 runs: failed 1" in capsys.readouterr().out
    (result,) = (isolated / "results" / "s").glob(f"*/{RESULT_FILE}")
    assert "MemoryError: too many features" in json.loads(result.read_text())["reason"]


# ------------------------------------------------------------------ results of a method changed since
STEADY = """
class Loss(nn.Module):
    def __init__(self, num_classes, feature_dim, params):
        super().__init__()
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
    def forward(self, features, fc, labels, progress):
        self.steps += 1
        if BROKEN and int(self.steps) > 2:
            raise RuntimeError("a bug in the plugin")
        logits = fc(features)
        return SCALE * F.cross_entropy(logits.float(), labels), logits


register_loss("plk", Loss)
"""


def _steady(folder: Path, scale: float, broken: bool) -> str:
    return _plugin(folder, "plug_steady", f"SCALE = {scale}\nBROKEN = {broken}\n" + STEADY)


@pytest.mark.slow
def test_train_trains_a_run_again_once_its_plugin_is_fixed(isolated, capsys):
    name = _steady(isolated, 1.0, broken=True)
    argv = ["train", "--plugin", name, "--method", "plk", "--epochs", "1", "--batch-size", "128", "--threads", "1",
            "--out", "run"]
    with pytest.raises(RuntimeError, match="a bug in the plugin"):
        main(argv)
    assert json.loads((isolated / "run" / RESULT_FILE).read_text())["status"] == "failed"
    del sys.modules[name]
    plugins._LOADED.pop(name)
    registry._LOSSES.pop("plk")
    _steady(isolated, 1.0, broken=False)
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "its method's code has changed" in out and "completed" in out
    result = json.loads((isolated / "run" / RESULT_FILE).read_text())
    assert result["status"] == "completed" and result["method_code"].startswith("sha256:")
    assert json.loads((isolated / "run" / "superseded" / "1" / RESULT_FILE).read_text())["status"] == "failed"


@pytest.mark.slow
def test_launch_counts_failed_runs_apart_and_trains_runs_of_a_changed_method_again(isolated, capsys):
    name = _steady(isolated, 1.0, broken=False)
    (isolated / "s.yaml").write_text(yaml.safe_dump({"plugins": [name], "grid": {"method": ["ce", "plk"]},
                                                     "overrides": {"epochs": 1, "batch_size": 256, "threads": 1}}))
    assert main(["launch", "s.yaml", "--cluster", "debug"]) == 0
    sweep_dir = isolated / "results" / "s"
    results = {json.loads(p.read_text())["method"]: p for p in sweep_dir.glob(f"*/{RESULT_FILE}")}
    first = json.loads(results["plk"].read_text())["method_code"]
    assert "method_code" not in json.loads(results["ce"].read_text())  # a built-in method's is the suite's
    # A failed run is not done, and not trained again without --retry-failed.
    ce = json.loads(results["ce"].read_text())
    results["ce"].write_text(json.dumps({**ce, "status": "failed", "reason": "RuntimeError: out of memory"}))
    capsys.readouterr()
    assert main(["launch", "s.yaml", "--cluster", "debug"]) == 0
    assert "2 runs, 1 already done, 1 failed (trained again with --retry-failed), 0 to run" in capsys.readouterr().out
    results["ce"].write_text(json.dumps(ce))

    # The plugin's maths change: its run is not done any more, and trains again from its first epoch.
    del sys.modules[name]
    plugins._LOADED.pop(name)
    registry._LOSSES.pop("plk")
    _steady(isolated, 2.0, broken=False)
    assert main(["plan", "s.yaml"]) == 0
    assert "1 of them ended under other code of their method" in capsys.readouterr().out
    assert main(["launch", "s.yaml", "--cluster", "debug"]) == 0
    out = capsys.readouterr().out
    assert "2 runs, 1 already done, 1 ended under other code of their method" in out and "1 to run" in out
    second = json.loads(results["plk"].read_text())
    assert second["status"] == "completed" and second["method_code"] not in (None, first)
    assert json.loads((results["plk"].parent / "superseded" / "1" / RESULT_FILE).read_text())["method_code"] == first
    assert main(["launch", "s.yaml", "--cluster", "debug"]) == 0
    assert "2 already done, 0 to run" in capsys.readouterr().out


def test_a_result_recorded_before_method_code_is_compared_by_its_plugins_package_version(isolated):
    from bench.experiment.resolve import resolve
    from bench.launch.todo import changed_method

    name = _plugin(isolated, "plug_pkg", _forward("loss, logits"))
    plugins.load([name])
    info = plugins._LOADED[name]
    plugins._LOADED[name] = info.__class__(info.module, "plug-pkg", "2.0", info.losses, info.origin, "plug-pkg 2.0")
    cfg = resolve({"method": "plk", "plugins": [name]})
    run_dir = isolated / "run"
    run_dir.mkdir()
    record = {"run_id": cfg.run_id, "status": "completed",
              "plugins": [{"module": name, "package": "plug-pkg", "version": "1.0", "losses": ["plk"]}]}
    (run_dir / RESULT_FILE).write_text(json.dumps(record))
    assert changed_method(cfg, run_dir) == "plug-pkg 1.0 → plug-pkg 2.0"
    record["plugins"][0]["version"] = "2.0"
    (run_dir / RESULT_FILE).write_text(json.dumps(record))
    assert changed_method(cfg, run_dir) is None


def test_a_report_warns_where_a_cell_mixes_versions_of_a_method(isolated):
    from bench.report.write import summary_lines

    runs = pd.DataFrame([
        {"run_id": f"r{i}", "dataset": "digits", "arch": "resnet32", "method": method, "seed": i,
         "status": "completed", "method_code": code}
        for i, (method, code) in enumerate([("plk", "sha256:aaa"), ("plk", "sha256:bbb"), ("plk", "sha256:bbb"),
                                            ("other", "sha256:ccc"), ("other", "sha256:ccc"), ("ce", None)])])
    warnings = [line for line, warn in summary_lines(runs) if warn and "versions" in line]
    assert len(warnings) == 1, warnings
    assert "plk on digits / resnet32" in warnings[0] and "sha256:aaa: 1 run, sha256:bbb: 2 runs" in warnings[0]


def test_every_built_in_method_keeps_the_contract_plugins_are_held_to():
    from bench.experiment.resolve import resolve
    from bench.methods import loss_names
    from bench.methods.contract import probe

    for name in loss_names():
        if registry.get_loss(name).builtin:
            probe(name, dict(resolve({"method": name}).params))


def test_a_loss_with_parameters_in_a_multi_process_sweep_and_a_wrong_hook_are_refused_at_plan(isolated, capsys):
    name = _plugin(isolated, "plug_param", """
    class Loss(nn.Module):
        synchronised = "yes"
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
        def forward(self, features, fc, labels, progress):
            logits = fc(features)
            return self.scale * F.cross_entropy(logits, labels), logits
    register_loss("plk", Loss)
    """)
    (isolated / "s.yaml").write_text(yaml.safe_dump({"plugins": [name], "grid": {"method": ["plk"]},
                                                     "resources": {"gpus_per_node": 2}}))
    assert main(["plan", "s.yaml"]) == 2
    _one_line(capsys, "method: 'plk'", "synchronised = 'yes'", "True or False")
    (isolated / f"{name}.py").write_text((isolated / f"{name}.py").read_text().replace('"yes"', "True"))
    del sys.modules[name]
    plugins._LOADED.pop(name)
    registry._LOSSES.pop("plk")
    assert main(["plan", "s.yaml"]) == 2
    _one_line(capsys, "method: 'plk'", "trainable parameters", "2 processes")
