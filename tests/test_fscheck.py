"""Paths by their shape on disk: each shape a command cannot use is one ConfigError naming the
option, and the checks leave nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.common.errors import ConfigError
from bench.common.paths import input_file, input_folder, output_folder


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "link-to-folder").symlink_to(tmp_path / "folder")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def entries(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name, why", [
    ("missing", "a path to an existing file"),
    ("folder", "a file (this is a folder)"),
    ("dangling", "is a link to"),
    ("loop", "symbolic links"),
    ("fifo", "a file (this is a named pipe)"),
    ("file/below", "file is a file, not a folder"),
])
def test_input_file_refuses(shapes, name, why):
    with pytest.raises(ConfigError, match="sweep: ") as exc:
        input_file(shapes / name, "sweep")
    assert why in str(exc.value)


def test_input_file_takes_a_file_through_a_link(shapes):
    (shapes / "link").symlink_to(shapes / "file")
    assert input_file(shapes / "link", "sweep") == shapes / "link"


@pytest.mark.parametrize("name, missing_ok, why", [
    ("file", True, "a folder (this is a file)"),
    ("dangling", True, "is a link to"),
    ("loop", True, "symbolic links"),
    ("file/below", True, "file is a file, not a folder"),
    ("missing", False, "an existing folder (does not exist)"),
    ("missing/deeper", False, "does not exist"),
])
def test_input_folder_refuses(shapes, name, missing_ok, why):
    with pytest.raises(ConfigError, match="--results: ") as exc:
        input_folder(shapes / name, "--results", missing_ok=missing_ok)
    assert why in str(exc.value)


def test_input_folder_takes_a_folder_a_link_to_one_or_one_not_made_yet(shapes):
    for name in ("folder", "link-to-folder", "missing", "missing/deeper"):
        assert input_folder(shapes / name, "--results", missing_ok=True) == shapes / name


@pytest.mark.parametrize("name, why", [
    ("file", "a folder (this is a file)"),
    ("file/below", "file is a file, not a folder"),
    ("dangling", "is a link to"),
    ("dangling/below", "is a link to"),
    ("loop/below", "symbolic links"),
    ("fifo/below", "fifo is a file, not a folder"),
])
def test_output_folder_refuses_and_leaves_nothing(shapes, name, why):
    before = entries(shapes)
    with pytest.raises(ConfigError, match="--out: ") as exc:
        output_folder(shapes / name, "--out")
    assert why in str(exc.value)
    assert entries(shapes) == before


def test_output_folder_asks_the_file_system_not_the_permission_bits():
    """Root passes every permission check, yet nothing can be made under /proc: the check tries."""
    with pytest.raises(ConfigError, match="a folder that can be created in /proc"):
        output_folder(Path("/proc/isda-bench/results"), "--results")


def test_output_folder_takes_new_and_existing_folders_without_making_them(shapes):
    before = entries(shapes)
    for name in ("folder", "link-to-folder", "new", "new/deeper/still"):
        assert output_folder(shapes / name, "--out") == shapes / name
    assert entries(shapes) == before
