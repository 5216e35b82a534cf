"""The package as a wheel ships what it needs: installed without ``-e`` into a folder of its own, it
plans the paper's sweeps by name from any folder; and bare names find the shipped sweeps and
profiles from any folder of a checkout too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from bench.common.errors import ConfigError
from bench.common.shipped import shipped_names
from bench.launch.slurm import load_profile
from bench.sweep.spec import load_sweep

REPO = Path(__file__).resolve().parents[1]
# What the wheel must hold, listed from the checkout's own folders (not from the code under test).
SHIPPED = sorted(str(p.relative_to(REPO)) for p in (REPO / "bench" / "shipped").rglob("*.yaml"))
REFERENCE = sorted(str(p.relative_to(REPO)) for p in (REPO / "bench" / "reference").glob("*.csv"))


def test_the_checkout_paths_and_the_shipped_files_are_the_same_files():
    for kind, link in (("sweeps", REPO / "sweeps"), ("profiles", REPO / "slurm" / "profiles")):
        assert link.resolve() == (REPO / "bench" / "shipped" / kind).resolve()
        assert shipped_names(kind) == sorted(p.stem for p in link.glob("*.yaml"))
    assert {"smoke", "cifar_main", "imagenet"} <= set(shipped_names("sweeps"))
    assert {"gpu", "local-cluster"} <= set(shipped_names("profiles"))


def test_bare_names_find_shipped_sweeps_and_profiles_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep = load_sweep("cifar_main")
    assert sweep.name == "cifar_main" and sweep.profile == "gpu"
    assert [c.run_id for c in sweep.runs] == [c.run_id for c in load_sweep(REPO / "sweeps" / "cifar_main.yaml").runs]
    assert load_sweep("smoke.yaml").name == "smoke"
    # The sweep's `profile: gpu` and a --profile name, with no slurm/profiles/ in this folder.
    assert load_profile(sweep.profile, sweep.path).partition == "gpu"
    assert load_profile("local-cluster").gpus_per_node == 0
    # A file of the user's own wins over a shipped sweep of the same name.
    (tmp_path / "smoke.yaml").write_text("name: mine\ngrid: {dataset: [digits], method: [ce]}\n")
    assert load_sweep("smoke.yaml").name == "mine"
    with pytest.raises(ConfigError) as err:
        load_sweep("cifar_mian")
    assert str(err.value).startswith("sweep: 'cifar_mian' is not allowed; a sweep file, or the name of a shipped "
                                     "sweep: ablation, cifar_augmentation, cifar_baselines, cifar_main,")
    with pytest.raises(ConfigError, match="profile: 'gpux' is not allowed; .*gpu, local-cluster"):
        load_profile("gpux")


def _copy_sources(dest: Path) -> None:
    """What the build reads (pyproject.toml names README.md and the bench* packages), so that its
    build/ and egg-info stay out of the checkout and no earlier build/ can leak into the wheel."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / "bench", dest / "bench", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


@pytest.mark.slow
def test_a_wheel_installed_without_e_plans_the_papers_sweeps_by_name_from_another_folder(tmp_path):
    source, dist, site, elsewhere = (tmp_path / n for n in ("src", "dist", "site", "elsewhere"))
    _copy_sources(source)
    quiet = {"capture_output": True, "text": True, "timeout": 600}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "--wheel-dir", str(dist), str(source)], **quiet)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("isda_bench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert SHIPPED and REFERENCE
    missing = [f for f in SHIPPED + REFERENCE if f not in names]
    assert not missing, f"not in the wheel: {missing}"

    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                                "--target", str(site), str(wheel)], **quiet)
    assert installed.returncode == 0, installed.stderr
    elsewhere.mkdir()
    # The wheel's bench first, then the environment's third-party packages; never the checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), sysconfig.get_paths()["purelib"]]),
           "WANDB_MODE": "disabled"}
    env.pop("ISDA_BENCH_RESULTS", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=elsewhere, env=env, **quiet)

    where = subprocess.run([sys.executable, "-c", "import bench; print(bench.__file__)"], cwd=elsewhere, env=env,
                           **quiet)
    assert Path(where.stdout.strip()).resolve() == (site / "bench" / "__init__.py").resolve(), where.stdout
    for name in ("cifar_main", "imagenet"):
        runs = load_sweep(REPO / "sweeps" / f"{name}.yaml").runs
        plan = cli("plan", name)
        assert plan.returncode == 0, plan.stderr
        assert f"sweep {name}: {len(runs)} runs" in plan.stdout and f"pending: {len(runs)}" in plan.stdout, plan.stdout
        assert all(cfg.run_id in plan.stdout for cfg in runs)
    wrong = cli("plan", "cifar_mian")
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "cifar_main" in wrong.stderr and "smoke" in wrong.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # plan wrote nothing
