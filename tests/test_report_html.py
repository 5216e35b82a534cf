"""report.html rendered by a real headless Chromium: the page draws (the screenshot is not blank)
and the browser's DOM has the tables and the embedded figures.

Needs the Debian package ``chromium``. Without it the test is skipped locally and fails in CI
(env CI == "true"), so CI cannot pass by not looking."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import pytest

from bench.report import write as report
from bench.results import collect as results
from tests.test_report import fx

CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
TIMEOUT_S = 120


def _chromium() -> str:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail(
            "chromium not installed; CI must run: apt-get install -y --no-install-recommends chromium"
        )
    pytest.skip("chromium not installed (apt-get install chromium)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("html")
    sweep_dir, planned = fx.build_sweep(root)
    runs = results.collect(sweep_dir, planned=planned)
    curves = results.load_curves(sweep_dir, runs["run_id"])
    report.write_report(runs, curves, root / "out", formats=("html",))
    return root / "out" / "report.html"


def test_screenshot_not_blank(page, tmp_path):
    browser = _chromium()
    shot = tmp_path / "shot.png"
    proc = _run(
        browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()
    )
    assert shot.exists() and shot.stat().st_size > 0, proc.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[:2] == (2000, 1200)
    # A blank (or error) page is one flat colour; a rendered report has text, rules and plots.
    assert float(img[..., :3].var()) > 1e-3
    assert float((img[..., :3].mean(axis=2) < 0.5).mean()) > 0.005  # some dark (text) pixels


def test_dom_has_tables_and_figures(page, tmp_path):
    browser = _chromium()
    proc = _run(browser, tmp_path / "profile", "--dump-dom", page.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0 and "<table" in dom, proc.stderr[-2000:]
    assert len(re.findall(r'<table class="results"', dom)) == 3  # the verdict, generic, main CIFAR table
    assert len(re.findall(r"<td", dom)) > 20
    assert "CIFAR-10" in dom and "ResNet-32" in dom and "<strong>" in dom
    imgs = re.findall(r'<img[^>]*src="data:image/png;base64,', dom)
    assert len(imgs) == 2  # learning curves + ISDA − CE gap
    assert "How to read" in dom


def test_missing_chromium_fails_only_in_ci(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install"):
        _chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="chromium not installed"):
        _chromium()


def test_paper_tables_in_the_browser(tmp_path):
    """The ablation's report as Chromium builds it: its three tables, a network header spanning its
    datasets' columns, and the figure of curves."""
    from tests import report_sweeps as rs

    browser = _chromium()
    sweep_dir = rs.build_ablation(tmp_path, seeds=2)
    runs = results.collect(sweep_dir)
    report.write_report(runs, results.load_curves(sweep_dir, runs["run_id"]), tmp_path / "out", formats=("html",))
    proc = _run(browser, tmp_path / "profile", "--dump-dom", (tmp_path / "out" / "report.html").as_uri())
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    keys = re.findall(r'<table class="results" id="table-([a-z_]+)"', dom)
    assert keys == ["verdict", "generic", "cifar_main", "ablation"]
    assert '<th colspan="4">ResNet-110</th>' in dom and "Single covariance matrix" in dom
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', dom)) == 2  # curves + ISDA − CE gap
