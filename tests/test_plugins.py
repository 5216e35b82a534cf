"""The method plugin API: register_loss and Param as a contract, and plugins loaded from --plugin,
a sweep's `plugins:` and the processes that train a sweep's runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from bench.common.errors import ConfigError
from bench.experiment.resolve import resolve
from bench.methods import Param, RegistrationError, get_loss, param_names, parse_method, register_loss, registry
from bench.methods import plugins as plugins_module
from bench.sweep.spec import parse_sweep

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "bench.cli"]


@pytest.fixture
def scratch_registry(monkeypatch):
    """What a test registers is gone after it."""
    monkeypatch.setattr(registry, "_LOSSES", dict(registry._LOSSES))
    monkeypatch.setattr(registry, "_PARAMS", dict(registry._PARAMS))


class _Loss:
    def __init__(self, num_classes, feature_dim, params):
        self.params = params


def _factory(num_classes, feature_dim, params):
    return _Loss(num_classes, feature_dim, params)


def test_a_name_taken_by_a_builtin_an_augmentation_or_a_modifier_is_refused(scratch_registry):
    for name in ("isda", "ce", "focal", "large_margin"):
        with pytest.raises(RegistrationError, match="taken .a built-in method"):
            register_loss(name, _factory)
    for name in ("cutout", "dropout", "standard", "Bad", "1x", "a-b", ""):
        with pytest.raises(RegistrationError, match="loss name"):
            register_loss(name, _factory)
    register_loss("mine", _factory)
    with pytest.raises(RegistrationError, match="registered by"):
        register_loss("mine", lambda n, a, p: None)


def test_registering_the_same_loss_again_is_a_no_op(scratch_registry):
    first = register_loss("twice", _factory, {"twice_w": 0.5})
    assert register_loss("twice", _factory, {"twice_w": 0.5}) is not None
    assert get_loss("twice").factory is _factory

    def _factory_again(num_classes, feature_dim, params):  # a module imported a second time
        return None

    _factory_again.__qualname__ = _factory.__qualname__
    register_loss("twice", _factory_again, {"twice_w": Param(0.5)})
    assert get_loss("twice").factory is _factory_again and first.params == get_loss("twice").params
    with pytest.raises(RegistrationError, match="'twice_w' means something else already .loss 'twice'"):
        register_loss("twice", _factory, {"twice_w": 0.7})  # the same name with another parameter


@pytest.mark.parametrize("declared, match", [
    (lambda: {"w": [1, 2]}, "number, a bool or a string"),
    (lambda: {"w": Param(0.5, kind="int")}, "default 0.5 is not an integer"),
    (lambda: {"w": Param("x", kind="float")}, "is not a number"),
    (lambda: {"w": Param(1.5, min=2.0)}, "is not a number >= 2"),
    (lambda: {"w": Param(1.0, below=1.0)}, "< 1"),
    (lambda: {"w": Param("a", choices=("b", "c"))}, "one of: b, c"),
    (lambda: {"w": Param(lambda d, a: 1.0)}, "needs kind="),
    (lambda: {"w": Param(1, kind="complex")}, "kind must be one of"),
    (lambda: {"W": 1.0}, "parameter name 'W'"),
])
def test_a_parameter_of_the_wrong_type_or_outside_its_bounds_is_refused(scratch_registry, declared, match):
    with pytest.raises(RegistrationError, match=match):
        register_loss("typed", _factory, declared())
    assert "typed" not in registry._LOSSES


@pytest.mark.parametrize("key", ["lr", "seed", "method", "plugins", "status", "final_test_error",
                                 "last10_test_error", "wall_time_s", "git_sha", "versions", "train_loss"])
def test_a_parameter_may_not_shadow_a_run_field_or_a_result_key(scratch_registry, key):
    with pytest.raises(RegistrationError, match="run field or a result.json key"):
        register_loss("shadow", _factory, {key: 1.0})


def test_a_parameter_name_has_one_meaning(scratch_registry):
    with pytest.raises(RegistrationError, match="means something else already .loss 'isda'"):
        register_loss("other", _factory, {"lambda0": 1.0})  # ISDA's, with another default
    register_loss("other", _factory, {"lambda0": registry.param("lambda0")})  # the same parameter: shared


def test_plugin_parameters_are_validated_checked_against_their_bounds_and_named_in_the_run_id(scratch_registry):
    register_loss("weighted", _factory, {"plug_w": Param(0.5, min=0.0, max=1.0, label="w"),
                                         "plug_n": Param(lambda d, a: 3 if d == "cifar10" else 1, kind="int")})
    cfg = resolve({"method": "weighted", "plug_w": 1})  # an integer is a number: stored as 1.0
    assert dict(cfg.params) == {"plug_w": 1.0, "plug_n": 1} and "-w1-" in cfg.slug
    assert cfg.run_id == resolve({"method": "weighted", "plug_w": 1.0}).run_id
    assert cfg.run_id != resolve({"method": "weighted", "plug_w": 0.5}).run_id
    assert resolve({"method": "weighted", "dataset": "cifar10"}).param("plug_n") == 3
    for value, allowed in ((1.5, "<= 1"), ("high", "a number"), (True, "a number")):
        with pytest.raises(ConfigError, match=allowed) as info:
            resolve({"method": "weighted", "plug_w": value})
        assert info.value.key == "plug_w"
    with pytest.raises(ConfigError, match="only for methods using it"):
        resolve({"method": "ce", "plug_w": 0.5})
    register_loss("broken_default", _factory, {"plug_k": Param(lambda d, a: "x", kind="int")})
    with pytest.raises(ConfigError) as info:
        resolve({"method": "broken_default"})
    assert info.value.key == "plug_k"


def test_a_plugin_parameter_is_a_sweep_axis_of_its_methods_only(scratch_registry):
    register_loss("axis_loss", _factory, {"axis_w": 0.1})
    sweep = parse_sweep({"grid": {"method": ["ce", "axis_loss", "axis_loss+cutout"], "axis_w": [0.1, 0.2, 0.3],
                                  "seed": [0]}}, "t")
    expected = [("ce", None)] + [(m, w) for m in ("axis_loss", "axis_loss+cutout") for w in (0.1, 0.2, 0.3)]
    assert sorted((c.method, c.param("axis_w")) for c in sweep.runs) == sorted(expected, key=str)
    assert "axis_w" in param_names() and parse_method("axis_loss+dropout").dropout


# ------------------------------------------------------------------ plugins as modules, through the CLI
PLUGIN = '''
from torch import nn
import torch.nn.functional as F

from bench.methods import Param, register_loss

__version__ = "1.2"


class Weighted(nn.Module):
    def __init__(self, num_classes, feature_dim, params):
        super().__init__()
        self.w = params["pluck_weight"]

    def forward(self, features, fc, labels, progress):
        logits = fc(features)
        return self.w * F.cross_entropy(logits.float(), labels), logits


register_loss("pluck", Weighted, {"pluck_weight": Param(1.0, min=0.0, label="w")})
'''


def _env(*paths: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO)]),
            "WANDB_MODE": "disabled"}


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, console: bool = False):
    # The console script, as users start it: its sys.path does not hold the current folder.
    cmd = [str(Path(sys.executable).with_name("isda-bench"))] if console else CLI
    return subprocess.run(cmd + args, cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=600)


def _one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("isda-bench: error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("source, words", [
    ("", ["no_such_plugin_mod"]),
    ("from bench.methods import register_loss\nregister_loss('isda', lambda n, a, p: None)\n",
     ["'isda' is taken (a built-in method)"]),
    ("from bench.methods import Param, register_loss\n"
     "register_loss('typo', lambda n, a, p: None, {'typo_w': Param('high', kind='float')})\n",
     ["Param default 'high' is not a number at no_such_plugin_mod.py:2"]),
    ("from bench.methods import register_loss\nregister_loss('shadowing', lambda n, a, p: None, {'status': 1})\n",
     ["'status' is a run field or a result.json key", "no_such_plugin_mod.py:2"]),
    ("import not_installed_dependency_xyz\n", ["No module named 'not_installed_dependency_xyz'", "imports cleanly"]),
    ("raise RuntimeError('broken\\non two lines')\n", ["RuntimeError: broken on two lines"]),
])
@pytest.mark.slow
def test_a_bad_plugin_is_one_line_and_exit_2(tmp_path, source, words):
    if source:
        (tmp_path / "no_such_plugin_mod.py").write_text(source)
        words = ["no_such_plugin_mod", *words]
    proc = _cli(["train", "--plugin", "no_such_plugin_mod", "--method", "ce", "--epochs", "1",
                 "--out", str(tmp_path / "run")], cwd=tmp_path, console=True)
    _one_line_error(proc, "--plugin", *words)
    assert not (tmp_path / "run").exists()
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"plugins": ["no_such_plugin_mod"], "grid": {"method": ["ce"]}}))
    # Every sweep command reads the sweep, so it names the plugin as a report does; one suffices here.
    commands = ("plan", "report", "status", "launch") if not source else ("report",)
    for command in commands:
        _one_line_error(_cli([command, str(sweep), "--results", str(tmp_path / "r")], cwd=tmp_path, console=True),
                        "plugins", *words)
    assert not (tmp_path / "r").exists() and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_a_plugin_parameter_of_the_wrong_type_from_the_user_is_one_line(tmp_path):
    (tmp_path / "pluck_mod.py").write_text(PLUGIN)
    proc = _cli(["train", "--plugin", "pluck_mod", "--method", "pluck", "--set", "pluck_weight=heavy",
                 "--out", str(tmp_path / "run")], cwd=tmp_path, console=True)
    _one_line_error(proc, "pluck_weight", "'heavy'", "a number")
    proc = _cli(["train", "--plugin", "pluck_mod", "--method", "pluck", "--set", "pluck_weight=-1",
                 "--out", str(tmp_path / "run")], cwd=tmp_path, console=True)
    _one_line_error(proc, "pluck_weight", ">= 0")


@pytest.mark.slow
def test_a_plugin_in_the_current_folder_trains_plans_with_its_axis_and_is_recorded(tmp_path):
    (tmp_path / "pluck_mod.py").write_text(PLUGIN)
    out = tmp_path / "run"
    proc = _cli(["train", "--plugin", "pluck_mod", "--method", "pluck", "--set", "pluck_weight=0.5", "--epochs", "1",
                 "--batch-size", "256", "--threads", "1", "--out", str(out)], cwd=tmp_path, console=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["pluck_weight"] == 0.5
    assert result["plugins"] == [{"module": "pluck_mod", "package": None, "version": "1.2", "losses": ["pluck"]}]
    assert yaml.safe_load((out / "config.yaml").read_text())["plugins"] == ["pluck_mod"]

    sweep = tmp_path / "plug.yaml"
    sweep.write_text(yaml.safe_dump({"plugins": ["pluck_mod"], "grid": {
        "dataset": ["digits"], "method": ["ce", "pluck"], "pluck_weight": [0.25, 0.5], "seed": [0]},
        "overrides": {"epochs": 1}}))
    proc = _cli(["plan", str(sweep), "--results", str(tmp_path / "r")], cwd=tmp_path, console=True)
    assert proc.returncode == 0, proc.stderr
    assert "3 runs" in proc.stdout and "pluck-w0.25-s0" in proc.stdout and "pluck-w0.5-s0" in proc.stdout
    # --plugin on a sweep command, for a sweep that does not name it
    sweep.write_text(yaml.safe_dump({"grid": {"method": ["pluck"], "pluck_weight": [0.25, 0.5]}}))
    proc = _cli(["plan", str(sweep), "--plugin", "pluck_mod", "--results", str(tmp_path / "r")], cwd=tmp_path,
                console=True)
    assert proc.returncode == 0 and "2 runs" in proc.stdout, proc.stderr
    _one_line_error(_cli(["plan", str(sweep), "--results", str(tmp_path / "r")], cwd=tmp_path, console=True),
                    "grid.pluck_weight")


@pytest.mark.slow
def test_the_job_of_a_run_imports_the_plugin_from_the_launching_folder_wherever_it_starts(tmp_path):
    """What a local subprocess, a SLURM job and each DDP rank run: a pickled TrainJob, here started
    in another folder, which must still find the plugin the launching command found in its own."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    (home / "pluck_mod.py").write_text(PLUGIN)
    job_file, run_dir = tmp_path / "job.pkl", tmp_path / "run"
    submit = textwrap.dedent(f"""
        import pickle
        from bench.methods import plugins
        from bench.experiment.resolve import resolve
        from bench.launch.job import TrainJob
        plugins.load(["pluck_mod"])
        cfg = resolve({{"method": "pluck", "pluck_weight": 0.5, "epochs": 1, "batch_size": 256, "threads": 1,
                       "plugins": ["pluck_mod"]}})
        job = TrainJob(cfg.to_dict(), {str(run_dir)!r})
        assert job.plugin_paths == [{str(home)!r}], job.plugin_paths
        pickle.dump(job, open({str(job_file)!r}, "wb"))
    """)
    start = f"import pickle; print(pickle.load(open({str(job_file)!r}, 'rb'))()['status'])"
    # A script started from another folder: sys.path holds its folder, not the current one (home).
    script = tmp_path / "scripts" / "submit.py"
    script.parent.mkdir()
    script.write_text(submit)
    proc = subprocess.run([sys.executable, str(script)], cwd=home, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    # No PYTHONPATH entry and no current folder that holds the module: only what the job carries.
    proc = subprocess.run([sys.executable, "-c", start], cwd=elsewhere, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip() == "completed", proc.stderr
    assert json.loads((run_dir / "result.json").read_text())["plugins"][0]["module"] == "pluck_mod"


@pytest.mark.slurm
def test_a_slurm_job_loads_the_sweeps_plugin_and_records_it(tmp_path):
    (tmp_path / "pluck_mod.py").write_text(PLUGIN)
    sweep = tmp_path / "plugslurm.yaml"
    sweep.write_text(yaml.safe_dump({"plugins": ["pluck_mod"], "grid": {
        "dataset": ["digits"], "method": ["pluck"], "pluck_weight": [0.5], "seed": [0]},
        "overrides": {"epochs": 1, "batch_size": 256}}))
    results = tmp_path / "results"
    proc = _cli(["launch", str(sweep), "--cluster", "slurm", "--profile", "local-cluster", "--results", str(results),
                 "--wait", "--poll", "1"], cwd=tmp_path, console=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result_file,) = (results / "plugslurm").glob("*/result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "completed" and result["pluck_weight"] == 0.5
    assert result["plugins"] == [{"module": "pluck_mod", "package": None, "version": "1.2", "losses": ["pluck"]}]
    assert json.loads((result_file.parent / "job.json").read_text())["cluster"] == "slurm"


# ------------------------------------------------------------------ the registry tells factories apart
def _weighted(num_classes, feature_dim, params, weight=1.0):
    return _Loss(num_classes, feature_dim, params)


def test_two_different_partials_or_lambdas_under_one_name_are_refused_and_the_same_again_is_not(
        scratch_registry):
    import functools

    register_loss("partial_loss", functools.partial(_weighted, weight=1.0))
    register_loss("partial_loss", functools.partial(_weighted, weight=1.0))  # a module imported again
    with pytest.raises(RegistrationError, match="'partial_loss' is taken"):
        register_loss("partial_loss", functools.partial(_weighted, weight=2.0))
    assert get_loss("partial_loss").factory.keywords == {"weight": 1.0}
    namespace: dict = {}
    exec(compile("first = lambda n, a, p: 1\nsecond = lambda n, a, p: 2\n", "lambdas_mod.py", "exec"), namespace)
    register_loss("lambda_loss", namespace["first"])
    with pytest.raises(RegistrationError, match="'lambda_loss' is taken"):
        register_loss("lambda_loss", namespace["second"])
    again: dict = {}  # the same source executed again: the same factory
    exec(compile("first = lambda n, a, p: 1\nsecond = lambda n, a, p: 2\n", "lambdas_mod.py", "exec"), again)
    register_loss("lambda_loss", again["first"])
    assert get_loss("lambda_loss").factory is again["first"]


def test_register_loss_decorates_a_factory_with_its_parameters_help_and_display_name(scratch_registry):
    from bench.report.paper import method_name

    @register_loss("decorated", params={"deco_w": Param(0.5, min=0.0)}, display="Decorated loss")
    class Decorated:
        """a loss registered by its decorator

        more text"""

        def __init__(self, num_classes, feature_dim, params):
            self.w = params["deco_w"]

    assert isinstance(Decorated, type) and get_loss("decorated").factory is Decorated
    spec = get_loss("decorated")
    assert spec.params["deco_w"].default == 0.5 and spec.help == "a loss registered by its decorator"
    assert method_name("decorated") == "Decorated loss" and method_name("decorated+cutout") == "Cutout+Decorated loss"
    with pytest.raises(RegistrationError, match="display must be a line of text"):
        register_loss("two_lines", _factory, display="a\nb")


# ------------------------------------------------------------------ loading: files, folders, what a module must do
from tests import test_plugin_contract as contract_tests  # noqa: E402

isolated = contract_tests.isolated  # the fixture: a scratch folder, and the registry and plugins restored after
_one_line = contract_tests._one_line

MARKED = PLUGIN + "\nimport pathlib\npathlib.Path('MARKER').write_text('ran')\n"


@pytest.mark.slow
def test_a_plugin_given_as_its_file_is_imported_as_its_module(isolated, capsys):
    from bench.cli import main

    (isolated / "plug_file.py").write_text(PLUGIN)
    assert main(["train", "--plugin", "plug_file.py", "--method", "pluck", "--epochs", "1", "--batch-size", "256",
                 "--threads", "1", "--out", "run"]) == 0
    config = yaml.safe_load((isolated / "run" / "config.yaml").read_text())
    assert config["plugins"] == ["plug_file"]  # the module: what the jobs import, wherever they start
    other = isolated / "elsewhere"
    other.mkdir()
    (other / "plug_deep.py").write_text(PLUGIN.replace('"pluck"', '"deep"').replace("pluck_weight", "deep_w"))
    assert main(["methods", "--plugin", "elsewhere/plug_deep.py"]) == 0
    assert f"deep  [file {other / 'plug_deep.py'}]" in capsys.readouterr().out


def test_a_plugin_file_is_refused_before_its_code_runs(isolated, capsys):
    from bench.cli import main

    # Named like an installed module: importing "json" would not import it, here or in a job.
    (isolated / "json.py").write_text(MARKED.replace("MARKER", str(isolated / "ran")))
    assert main(["plan", "smoke", "--plugin", "json.py"]) == 2
    _one_line(capsys, "--plugin: 'json.py'", "rename the file")
    assert main(["plan", "smoke", "--plugin", "plug_missing.py"]) == 2
    _one_line(capsys, "--plugin: 'plug_missing.py'", "a Python file that exists", str(isolated / "plug_missing.py"))
    assert not (isolated / "ran").exists()


def test_a_sweeps_plugin_is_looked_for_beside_the_sweep_file(isolated, capsys):
    from bench.cli import main

    folder = isolated / "project"
    (folder / "losses").mkdir(parents=True)
    (folder / "plug_beside.py").write_text(PLUGIN)
    (folder / "losses" / "plug_nested.py").write_text(PLUGIN.replace('"pluck"', '"nested"').replace(
        "pluck_weight", "nested_w"))
    (folder / "s.yaml").write_text(yaml.safe_dump({"plugins": ["plug_beside", "losses/plug_nested.py"],
                                                   "grid": {"method": ["pluck", "nested"]}}))
    elsewhere = isolated / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    assert main(["plan", str(folder / "s.yaml")]) == 0
    out = capsys.readouterr().out
    assert "2 runs" in out and "pluck-w1-s0" in out and "nested-w1-s0" in out
    sweep = parse_sweep(yaml.safe_load((folder / "s.yaml").read_text()), "s", folder / "s.yaml")
    assert {cfg.plugins for cfg in sweep.runs} == {("plug_beside", "plug_nested")}


@pytest.mark.parametrize("source, words", [
    ("X = 1\n", ["registers at least one loss", "registered none"]),
    ("import sys\nsys.exit(0)\n", ["called sys.exit(0) at plug_exits.py:2"]),
])
def test_a_plugin_that_registers_nothing_or_exits_is_refused(isolated, capsys, source, words):
    from bench.cli import main

    (isolated / "plug_exits.py").write_text(source)
    assert main(["train", "--plugin", "plug_exits", "--epochs", "1", "--out", "run"]) == 2
    _one_line(capsys, "--plugin: 'plug_exits'", *words)
    assert not (isolated / "run").exists()


def _installed(site: Path, module: str, source: str) -> None:
    """A package installed into ``site`` as pip installs one: its module and its entry point."""
    info = site / "plug_dist-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[isda_bench.methods]\n{module} = {module}\n")
    (info / "top_level.txt").write_text(module + "\n")
    (site / f"{module}.py").write_text(source)


def test_a_broken_installed_plugin_stops_only_what_needs_it_and_is_named(isolated, monkeypatch, capsys):
    from bench.cli import main

    _installed(isolated / "site", "plug_broken", "raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(isolated / "site"))
    monkeypatch.setattr(plugins_module, "_ENTRY_POINTS_DONE", False)
    cfg = resolve({"method": "ce", "epochs": 1})  # a built-in method: not stopped by it
    assert cfg.method == "ce"
    with pytest.raises(ConfigError, match="RuntimeError: half-installed") as info:
        resolve({"method": "broken"})
    assert "entry point 'plug_broken' of plug-dist 1.0" in str(info.value)
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "Installed plugins that did not load:" in out and "plug_broken" in out


def test_methods_lists_every_method_its_parameters_and_where_it_comes_from(isolated, monkeypatch, capsys):
    from bench.cli import main

    _installed(isolated / "site", "plug_pkg", PLUGIN.replace('"pluck"', '"pkg_loss"').replace(
        "pluck_weight", "pkg_w"))
    monkeypatch.syspath_prepend(str(isolated / "site"))
    monkeypatch.setattr(plugins_module, "_ENTRY_POINTS_DONE", False)
    (isolated / "plug_listed.py").write_text(PLUGIN.replace(
        'register_loss("pluck", Weighted, {"pluck_weight": Param(1.0, min=0.0, label="w")})',
        'register_loss("listed", Weighted, {"pluck_weight": Param(1.0, min=0.0, label="w", help="how much")}, '
        'help="a weighted cross-entropy", display="Listed")'))
    assert main(["methods", "--plugin", "plug_listed"]) == 0
    out = capsys.readouterr().out
    assert "focal  [built-in]\n    Focal loss (Lin et al. 2017)\n" in out
    assert "--set focal_alpha=…  default 0.5; a number >= 0 and <= 1; weight α of the loss" in out
    assert "--set lambda0=…  default set by the recipe; a number >= 0" in out
    assert "pkg_loss  [package plug-dist 1.0 (module plug_pkg)]" in out
    assert (f"listed  [file {isolated / 'plug_listed.py'}]  shown as 'Listed'\n    a weighted cross-entropy\n"
            "    --set pluck_weight=…  default 1.0; a number >= 0; how much") in out
    assert "Augmentations: cutout, autoaugment" in out
