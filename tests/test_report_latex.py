"""report.tex compiles with a real pdflatex (Debian texlive-latex-base + texlive-latex-recommended,
installed by .ci/run). Without pdflatex the test is skipped locally and fails in CI."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests import report_sweeps as rs
from tests.test_report import _report, build_rich, fx


def _pdflatex() -> str:
    path = shutil.which("pdflatex")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("pdflatex not installed; CI must run: apt-get install -y --no-install-recommends "
                    "texlive-latex-base texlive-latex-recommended")
    pytest.skip("pdflatex not installed (apt-get install texlive-latex-base texlive-latex-recommended)")


@pytest.mark.slow
@pytest.mark.parametrize("which", ["basic", "rich", "ablation", "regularizers", "explicit", "lambda", "imagenet"])
def test_report_tex_compiles_to_a_pdf(tmp_path, which):
    pdflatex = _pdflatex()
    if which == "basic":
        sweep_dir, planned = fx.build_sweep(tmp_path)
    elif which == "rich":
        sweep_dir, planned = build_rich(tmp_path), None
    else:  # every paper-style table and figure, with all the symbols their cells and notes use
        sweep_dir, planned = getattr(rs, f"build_{which}")(tmp_path, seeds=2), None
    _, out, paths = _report(tmp_path, sweep_dir, planned, formats=("md", "tex"))
    tex = out / "report.tex"
    assert tex in paths
    proc = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    pdf = out / "report.pdf"
    assert pdf.stat().st_size > 10_000 and pdf.read_bytes().startswith(b"%PDF")
    # Every table and figure made it into the document (a missing figure file would have halted).
    log = (out / "report.log").read_text(errors="replace")
    assert log.count("<figures/") >= 1 and "Undefined control sequence" not in log
