"""Reading wandb's ``.wandb`` transaction logs back (records, history rows, the steps a run has logged)
by decoding wandb's own protobuf ``Record`` messages, without wandb's service."""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("<4sHB")  # b":W&B", magic 0xBEE1, version
_BLOCK = 32 * 1024
_CHUNK = struct.Struct("<IHB")  # crc32, length, type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    """The records of a transaction log: wandb's LevelDB-style log (32 KiB blocks of checksummed chunks).
    A truncated or damaged tail (a killed process) ends the iteration."""
    if len(data) < _HEADER.size:
        return
    ident, magic, version = _HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1 or version != 0:
        raise ValueError("not a W&B transaction log")
    pos = _HEADER.size
    parts: list[bytes] = []
    while pos + _CHUNK.size <= len(data):
        room = _BLOCK - pos % _BLOCK
        if room < _CHUNK.size:  # block trailer: padding
            pos += room
            continue
        crc, length, kind = _CHUNK.unpack_from(data, pos)
        start, end = pos + _CHUNK.size, pos + _CHUNK.size + length
        if kind == 0 and length == 0:  # zero padding
            pos += room
            continue
        if end > len(data) or zlib.crc32(data[start:end], zlib.crc32(bytes([kind]))) & 0xFFFFFFFF != crc:
            return
        chunk, pos = data[start:end], end
        if kind == _FULL:
            parts = []
            yield chunk
        elif kind == _FIRST:
            parts = [chunk]
        elif kind == _MIDDLE:
            parts.append(chunk)
        elif kind == _LAST:
            parts.append(chunk)
            yield b"".join(parts)
            parts = []
        else:
            return


def read_records(path: Path | str) -> Iterator[Any]:
    """The ``wandb.proto.wandb_internal_pb2.Record`` messages of one ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]  # generated, without stubs
        record.ParseFromString(payload)
        yield record


def read_history(path: Path | str) -> list[dict[str, Any]]:
    """The history rows of one ``.wandb`` file: one dict per ``run.log`` call, with ``_step``."""
    rows = []
    for record in read_records(path):
        if record.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in record.history.item:
            keys = [item.key] if item.key else list(item.nested_key)
            node = row
            for part in keys[:-1]:  # a media value (table, image) comes as one item per field
                node = node.setdefault(part, {})
            node[keys[-1]] = json.loads(item.value_json)
        if record.history.HasField("step") and "_step" not in row:
            row["_step"] = record.history.step.num
        rows.append(row)
    return rows


def run_files(run_dir: Path | str, tracking_id: str) -> list[Path]:
    """The ``.wandb`` files that one W&B run left in ``run_dir/wandb/`` (several after resumes), oldest first.

    wandb names the folders ``[offline-]run-<YYYYmmdd_HHMMSS>-<id>``, with ``-1``, ``-2``… added when
    two start within the same second."""
    pattern = re.compile(rf"^(?:offline-)?run-(\d{{8}}_\d{{6}})-{re.escape(tracking_id)}(?:-(\d+))?$")
    found = []
    for path in (Path(run_dir) / "wandb").glob(f"*/run-{tracking_id}.wandb"):
        match = pattern.match(path.parent.name)
        if match and not path.parent.is_symlink():
            found.append(((match.group(1), int(match.group(2) or 0)), path))
    return [path for _, path in sorted(found)]


def logged_steps(run_dir: Path | str, tracking_id: str) -> list[int]:
    """Every history step that the local transaction logs of ``tracking_id`` hold (a damaged file counts
    for what it has)."""
    steps: list[int] = []
    for path in run_files(run_dir, tracking_id):
        try:
            steps += [int(row["_step"]) for row in read_history(path) if "_step" in row]
        except Exception:  # noqa: BLE001 - an unreadable log just does not count
            continue
    return steps
