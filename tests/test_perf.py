"""bench.perf: each benchmark's files, rows and argument validation (no timing assertions)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from bench.common.errors import ConfigError
from bench.perf.commands import COMMANDS, main
from bench.perf.isda_ops import count_step_ops
from bench.perf.isda_steps import GRID, METHODS, estimate_bytes, make_phased_step


def test_isda_quick_grid_writes_csv_and_markdown(tmp_path, capsys):
    assert main(["isda", "--grid", "quick", "--repeats", "2", "--warmup", "1",
                      "--device", "cpu", "--out", str(tmp_path)]) == 0  # fmt: skip
    version = torch.__version__.split("+")[0]
    stem = f"perf_isda_cpu_torch{version}_float32"
    csv_path, md_path = tmp_path / f"{stem}.csv", tmp_path / f"{stem}.md"
    assert csv_path.exists() and md_path.exists()

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    want = {(n, c, a, mode, m) for n, c, a, mode in GRID["quick"] for m in METHODS}
    got = {(int(r["N"]), int(r["C"]), int(r["A"]), r["mode"], r["method"]) for r in rows}
    assert got == want and len(rows) == len(want)
    for r in rows:
        assert r["status"] == "ok", r
        assert r["device"] == "cpu" and r["dtype"] == "float32" and r["repeats"] == "2"
        assert float(r["time_ms"]) > 0 and float(r["time_ms_min"]) > 0
        assert float(r["time_ms_min"]) <= float(r["time_ms"])
        assert math.isfinite(float(r["extra_mb"])) and float(r["extra_mb"]) > 0
        if r["method"] != "ce":
            assert float(r["state_mb"]) > 0

    md = md_path.read_text()
    printed = capsys.readouterr().out
    for n, c, a, mode in GRID["quick"]:
        line = f"| {n} | {c} | {a} | {mode} |"
        assert line in md and line in printed


def test_reference_skipped_above_limit_is_recorded(tmp_path):
    main(["isda", "--shape", "16,4,8,full", "--repeats", "1", "--warmup", "0", "--device", "cpu",
               "--skip-reference-above", "1e-9", "--out", str(tmp_path)])  # fmt: skip
    (path,) = tmp_path.glob("*.csv")
    with open(path) as fh:
        status = {r["method"]: r["status"] for r in csv.DictReader(fh)}
    assert status["ce"] == status["isda"] == "ok"
    assert status["reference"].startswith("skipped (est. ")


@pytest.mark.parametrize(
    "args,key",
    [
        (["--dtype", "float16"], "--dtype"),
        (["--device", "tpu"], "--device"),
        (["--grid", "huge"], "--grid"),
        (["--repeats", "0"], "--repeats"),
        (["--repeats", "many"], "--repeats"),
        (["--shape", "128,100,640,dense"], "--shape"),
        (["--skip-reference-above", "-1"], "--skip-reference-above"),
    ],
)
def test_bad_input_raises_config_error(tmp_path, args, key):
    with pytest.raises(ConfigError) as err:
        main(["isda", *args, "--out", str(tmp_path)])
    assert err.value.key == key
    assert not list(tmp_path.iterdir())  # rejected before any work


def test_estimates_grow_with_shape():
    small, large = (128, 100, 64, "full"), (64, 1000, 2048, "full")
    assert estimate_bytes("reference", large) > 50e9  # the reference's full-covariance blow-up
    for method in METHODS:
        assert 0 < estimate_bytes(method, small) < estimate_bytes(method, large)


def test_training_benchmarks_write_their_tables(tmp_path):

    common = ["--device", "cpu", "--out", str(tmp_path)]
    assert main(["step", "--arch", "resnet32", "--dataset", "digits", "--batch", "16", "--steps", "1",
                 "--blocks", "1", "--warmup", "1", *common]) == 0
    assert main(["loader", "--images", "512", "--steps", "2", "--workers", "0", *common]) == 0
    assert main(["epoch", "--arch", "resnet32", "--dataset", "cifar10", "--batch", "8", "--steps", "1",
                 "--workers", "0", *common]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert any(n.startswith("perf_step_resnet32_digits_cpu_torch") and n.endswith(".csv") for n in names)
    assert any(n.startswith("perf_loader_cpu") for n in names)
    assert any(n.startswith("perf_epoch_resnet32_cifar10_cpu") for n in names)  # the dataset too: no overwrite
    step_csv = next(tmp_path.glob("perf_step_*.csv")).read_text().splitlines()
    assert len(step_csv) == 4 and all(",ok" in line for line in step_csv[1:])  # ce, isda, reference
    epoch_md = next(tmp_path.glob("perf_epoch_*.md")).read_text()
    assert "isda-bench: resident loader, fp32, ISDA" in epoch_md  # what ran on the CPU, not bf16
    assert "--dataset cifar10 --batch 8" in epoch_md  # the command that reproduces it
    import csv

    with open(next(tmp_path.glob("perf_epoch_*.csv"))) as fh:
        ips = [float(r["images_per_s"]) for r in csv.DictReader(fh)]
    speedup = float(epoch_md.split("\n")[-2].rsplit("|", 2)[-2].strip().rstrip("×"))
    # From the measured rates, which the CSV rounds to 0.1 image/s: within what that rounding allows
    # (at a few images/s a ratio of rounded rates could be off in its second decimal), plus the table's own.
    low, high = (ips[1] - 0.05) / (ips[0] + 0.05), (ips[1] + 0.05) / (ips[0] - 0.05)
    assert low - 0.005 <= speedup <= high + 0.005, (speedup, ips)


def _step_rows(tmp_path, methods: str, device: str = "cpu", arch: str = "resnet32") -> dict[str, dict[str, str]]:
    import csv


    out = tmp_path / methods.replace(",", "-")
    assert main(["step", "--arch", arch, "--dataset", "digits", "--batch", "16", "--steps", "1", "--blocks", "1",
                 "--warmup", "1", "--methods", methods, "--device", device, "--out", str(out)]) == 0
    with open(next(out.glob("perf_step_*.csv"))) as fh:
        return {r["method"]: r for r in csv.DictReader(fh)}


def test_step_memory_is_each_methods_own_whatever_ran_before(tmp_path):
    # Counting everything allocated made a method measured after others carry their models too
    # (here about 11 MB more). CPU allocator events vary from run to run, by up to 0.7 MB seen in CI.
    alone = _step_rows(tmp_path, "ce")["ce"]
    after = _step_rows(tmp_path, "isda,reference,ce")
    assert float(after["ce"]["peak_mb"]) == pytest.approx(float(alone["peak_mb"]), abs=1.5)
    assert float(after["ce"]["state_mb"]) == float(alone["state_mb"])


def test_step_state_memory_is_weights_gradients_momentum_and_statistics(tmp_path):
    from bench.models import create_model

    rows = _step_rows(tmp_path, "ce,isda")
    model = create_model("resnet32", num_classes=10, in_chans=1)
    weights = sum(p.numel() for p in model.parameters()) * 4
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    ce = 3 * weights + buffers  # SGD with momentum: weight, gradient and momentum buffer per parameter
    c, a = 10, model.num_features
    stats = (c * a * a + c * a + c) * 4  # float32 covariance, mean and count per class
    assert float(rows["ce"]["state_mb"]) == round(ce / 2**20, 1)
    assert float(rows["isda"]["state_mb"]) == round((ce + stats) / 2**20, 1)
    for r in rows.values():  # a step allocates activations beyond what is held between steps
        assert float(r["peak_mb"]) > float(r["state_mb"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA only: the allocator's peak")
def test_cuda_step_memory_is_each_methods_own_whatever_ran_before(tmp_path):
    alone = _step_rows(tmp_path, "ce", "cuda")["ce"]
    after = _step_rows(tmp_path, "reference,ce", "cuda")["ce"]
    assert float(after["peak_mb"]) == pytest.approx(float(alone["peak_mb"]), rel=0.02)


@pytest.mark.slow
def test_step_benchmark_compiles_ours_keeps_the_reference_eager_and_reports_declined_cuda_graphs(tmp_path):
    """reduce-overhead on the CPU compiles with Inductor, whose CUDA graphs a CPU cannot have: the
    benchmark must say that those times are not CUDA-graph times, and count the declined graphs."""
    import csv


    assert main(["step", "--arch", "resnet32", "--dataset", "digits", "--batch", "16", "--steps", "1", "--blocks",
                 "1", "--warmup", "1", "--methods", "isda,reference", "--compile", "reduce-overhead", "--device",
                 "cpu", "--out", str(tmp_path)]) == 0
    path = next(tmp_path.glob("perf_step_resnet32_digits_compile-reduce-overhead_cpu_*.csv"))
    with open(path) as fh:
        got = {r["method"]: r for r in csv.DictReader(fh)}
    assert {m: (r["compile"], r["status"]) for m, r in got.items()} == {"isda": ("reduce-overhead", "ok"),
                                                                         "reference": ("off", "ok")}
    assert int(got["isda"]["cudagraph_skips"]) >= 1 and got["reference"]["cudagraph_skips"] == ""
    note = path.with_suffix(".md").read_text()
    assert f"**CUDA graphs were declined** (isda: {got['isda']['cudagraph_skips']} graph" in note
    assert "reference:" not in note.split("declined", 1)[1].split(")", 1)[0]


@pytest.mark.parametrize("argv, key", [
    (["step", "--arch", "vgg"], "--arch"),
    (["step", "--dataset", "mnist"], "--dataset"),
    (["step", "--methods", "ce,mixup"], "--methods"),
    (["epoch", "--compile", "fast"], "--compile"),
    (["accuracy", "--seeds", "3"], "--seeds"),
    (["loader", "--images", "300", "--batch", "512"], "--batch"),
    (["step", "--methods", ","], "--methods"),  # was an IndexError after measuring nothing
    (["isda", "--out", "/proc/isda-bench-no"], "--out"),  # was an error after the whole benchmark
    (["step", "--arch", "resnet32", "--dataset", "digits", "--out", "/proc/isda-bench-no"], "--out"),
    (["loader", "--out", "/proc/isda-bench-no"], "--out"),
    (["epoch", "--arch", "resnet32", "--dataset", "cifar10", "--out", "/proc/isda-bench-no"], "--out"),
    (["accuracy", "--arch", "vgg"], "arch"),
])
def test_training_benchmarks_refuse_bad_input(argv, key):

    with pytest.raises(ConfigError) as info:
        main([*argv, "--device", "cpu"])
    assert info.value.key == key


# Measured with torch 2.11 on the CPU, float32: CE dispatches 20 ops per step; on top of that
# ISDA added 81 (full, C ≤ N table), 73 (full, per sample) and 88 (diagonal) before the op-count
# work, 45 / 45 / 47 after it; the reference formulation adds 99 (full) and 85 (diagonal).
# A few ops of headroom for other torch versions; a change that adds a handful of ops per step
# should trip this.
@pytest.mark.parametrize(
    "shape,bound",
    [((128, 100, 64, "full"), 50), ((16, 40, 8, "full"), 50), ((64, 100, 16, "diagonal"), 52)],
    ids=["full-table", "full-per-sample", "diagonal"],
)
def test_isda_step_op_count_stays_low(shape, bound):
    counts = {m: count_step_ops(make_phased_step(m, shape, "float32")) for m in METHODS}
    assert counts["ce"]["ops"] == counts["ce"]["ops_forward"] + counts["ce"]["ops_backward"] > 0
    assert counts["isda"]["ops"] - counts["ce"]["ops"] <= bound, counts["isda"]
    assert counts["isda"]["ops"] < counts["reference"]["ops"]
    assert counts["isda"]["kernels"] < counts["reference"]["kernels"]
    again = count_step_ops(make_phased_step("isda", shape, "float32"))
    assert again == counts["isda"]  # a count, not a timing: the same every time


def test_isda_ops_subcommand_writes_table(tmp_path, capsys):
    assert main(["isda-ops", "--shape", "16,4,8,full", "--shape", "16,4,8,diagonal", "--repeats", "2",
                      "--out", str(tmp_path)]) == 0  # fmt: skip
    (csv_path,) = tmp_path.glob("perf_isda_ops_cpu_*.csv")
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["mode"], r["method"]) for r in rows} == {(m, x) for m in ("full", "diagonal") for x in METHODS}
    for r in rows:
        assert r["status"] == "ok" and int(r["ops"]) == int(r["kernels"]) + int(r["views"]) > 0
        assert float(r["time_ms"]) > 0
    assert "| 16 | 4 | 8 | full | isda |" in capsys.readouterr().out
    with pytest.raises(ConfigError):
        main(["isda-ops", "--dtype", "float16", "--out", str(tmp_path)])


@pytest.mark.slow
def test_accuracy_benchmark_compares_plain_and_fast_runs_over_seeds(tmp_path):
    import csv


    argv = ["accuracy", "--method", "ce", "--epochs", "2", "--seeds", "0,1", "--device", "cpu", "--out", str(tmp_path)]
    assert main(argv) == 0
    with open(next(tmp_path.glob("perf_accuracy_resnet32_digits_cpu_*.csv"))) as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["setting"], r["seed"], r["status"]) for r in rows] == [
        (setting, seed, "completed") for seed in "01" for setting in ("plain", "fast")]
    # On the CPU both settings compute the same (float32, resident data): equal errors, seed by seed.
    assert rows[0]["final_test_error"] == rows[1]["final_test_error"] != rows[2]["final_test_error"]
    assert rows[2]["final_test_error"] == rows[3]["final_test_error"]
    assert "within seed noise" in next(tmp_path.glob("perf_accuracy_*.md")).read_text()
    results = sorted(tmp_path.glob("accuracy/*/*/result.json"))
    assert {p.parent.parent.name for p in results} == {"plain-cpu", "fast-cpu-compile-off"}
    assert len(results) == 4
    stamps = [p.stat().st_mtime_ns for p in results]
    assert main(argv) == 0 and [p.stat().st_mtime_ns for p in results] == stamps  # done runs are not retrained


def test_accuracy_benchmark_on_a_training_subset_names_it_and_refuses_an_impossible_one(tmp_path):
    import yaml


    argv = ["accuracy", "--method", "ce", "--epochs", "1", "--seeds", "0,1", "--device", "cpu", "--train-size", "200",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    md = next(tmp_path.glob("perf_accuracy_resnet32_digits_n200_*.md")).read_text()
    assert "200 training images" in md and "--epochs 1 --train-size 200" in md
    configs = [yaml.safe_load(p.read_text()) for p in tmp_path.glob("accuracy/*/*/config.yaml")]
    assert len(configs) == 4 and {c["train_size"] for c in configs} == {200}
    with pytest.raises(ConfigError, match="train_size: 1438.*at most 1437"):
        main([*argv[:-3], "1438", "--out", str(tmp_path / "refused")])
    assert not (tmp_path / "refused").exists()


def test_accuracy_benchmark_says_when_too_few_runs_finished(tmp_path, monkeypatch, capsys):
    import bench.train.trainer

    monkeypatch.setattr(bench.train.trainer, "run", lambda cfg, run_dir, **kw: {
        "status": "diverged", "final_test_error": None, "precision": "fp32", "images_per_s": None})
    assert main(["accuracy", "--seeds", "0,1", "--device", "cpu", "--out", str(tmp_path)]) == 1
    assert "too few runs with a final test error" in capsys.readouterr().err
    assert not list(tmp_path.glob("perf_accuracy_*"))  # no table that would claim a comparison


def test_isda_ops_refuses_an_unusable_out_before_counting():
    with pytest.raises(ConfigError) as info:
        main(["isda-ops", "--out", "/proc/isda-bench-no"])
    assert info.value.key == "--out"


def test_the_command_table_is_fixed_and_the_parser_offers_each_benchmark():
    from bench.perf.commands import build_parser

    names = ["isda", "isda-ops", "step", "loader", "epoch", "accuracy", "report"]
    assert list(COMMANDS) == names
    with pytest.raises(TypeError):
        COMMANDS["extra"] = COMMANDS["isda"]  # type: ignore[index]
    (sub,) = [a for a in build_parser()._actions if a.dest == "subcommand"]
    assert list(sub.choices) == names
    assert list(COMMANDS) == names  # building the parser added nothing


def test_the_benchmark_modules_import_one_another_without_a_circle():
    """Each module of bench/perf, and the bench.perf modules it imports (at its top or inside a
    function): following them never comes back to where it started."""
    import ast
    from pathlib import Path

    import bench.perf

    folder = Path(bench.perf.__file__).parent
    imports: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "bench.perf":
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench.perf."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("bench.perf.")}
        imports[path.stem] = found - {path.stem}
    assert {"commands", "isda", "step", "plans", "timing"} <= set(imports)

    def reaches(path: tuple[str, ...]) -> None:
        for name in imports.get(path[-1], ()):
            assert name not in path, f"import circle: {' → '.join([*path, name])}"
            reaches((*path, name))

    for module in imports:
        reaches((module,))


@pytest.mark.slow
def test_the_report_benchmark_times_reports_of_runs_written_as_the_engine_writes_them(tmp_path, capsys):
    """perf report on the smoke sweep: its fabricated runs are runs to `isda-bench report` (counted
    completed, each with a curve), and its files give the command's CPU time and each step's."""
    from bench.results.collect import collect, load_curves
    from bench.sweep.spec import load_sweep

    out = tmp_path / "perf"
    assert main(["report", "--sweep", "smoke", "--runs", "5", "--repeat", "1", "--budget", "100", "--out",
                 str(out)]) == 0
    sweep = load_sweep("smoke")
    sweep_dir = out / "report-data" / "results" / "smoke"
    runs = collect(sweep_dir, [{"run_id": c.run_id, **c.to_dict()} for c in sweep.runs])
    assert (runs["status"] == "completed").sum() == 5 and (runs["status"] == "pending").sum() == len(sweep.runs) - 5
    assert not runs.attrs["damaged"]
    done = runs[runs["status"] == "completed"]
    assert load_curves(sweep_dir, done["run_id"]).groupby("run_id").size().to_dict() == {
        r: e for r, e in zip(done["run_id"], done["epochs"].astype(int))}
    assert (out / "report-data" / "reports" / "smoke" / "report.tex").is_file()
    with open(out / "perf_report_smoke.csv", newline="") as fh:
        rows = {r["what"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"isda-bench report (least of 1)", "isda-bench report (median of 1)",
                         *(f"step: {s}" for s in ("imports", "read", "tables", "figures", "documents"))}
    total = float(rows["isda-bench report (least of 1)"]["cpu_s"])
    assert total > 0 and float(rows["step: figures"]["cpu_s"]) > 0
    assert math.isclose(float(rows["isda-bench report (least of 1)"]["of_budget"]), total / 100, abs_tol=1e-3)
    assert "× the 100 s budget" in capsys.readouterr().out
