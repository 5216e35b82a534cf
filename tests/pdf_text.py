"""What a PDF written by pdflatex shows on its pages, read from the file itself (no PDF library):
each page's text runs with the height they are drawn at, in pt, after every scaling (font size,
text matrix and the current transformation, which \\resizebox changes).

Only the pages' own content streams are read; the figures' (form XObjects) are left out. pdfTeX
writes a page's content stream when it ships the page out, so streams come in page order."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(rb"\s*(?:(%[^\r\n]*)|(\()|(<[0-9A-Fa-f\s]*>)|(/[^\s/\[\]()<>{}%]*)|(\[|\])|"
                    rb"([-+]?(?:\d+\.?\d*|\.\d+))(?![\w.])|([A-Za-z'\"*][\w'\"*]*))")


@dataclass(frozen=True)
class Run:
    text: str  # the string's bytes as Latin-1 (pdfTeX's Computer Modern: ASCII letters and digits)
    size: float  # drawn height of 1 em, in pt


def _string(data: bytes, i: int) -> tuple[bytes, int]:
    """A literal string starting after its "(" at ``i``: (bytes, index after its ")")."""
    out, depth = bytearray(), 1
    while i < len(data):
        ch = data[i]
        if ch == 0x5C:  # backslash
            nxt = data[i + 1]
            octal = re.match(rb"[0-7]{1,3}", data[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(), 8) & 0xFF)
                i += 1 + len(octal.group())
                continue
            out += {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t"}.get(nxt, bytes([nxt]))
            i += 2
            continue
        depth += {0x28: 1, 0x29: -1}.get(ch, 0)
        if depth == 0:
            return bytes(out), i + 1
        out.append(ch)
        i += 1
    return bytes(out), i


def _mul(a: list[float], b: list[float]) -> list[float]:
    return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2],
            a[2] * b[1] + a[3] * b[3], a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5]]


def _runs(content: bytes) -> list[Run]:
    ctm, stack, tm, size = [1.0, 0, 0, 1.0, 0, 0], [], [1.0, 0, 0, 1.0, 0, 0], 0.0
    operands: list = []
    out: list[Run] = []
    i = 0
    while i < len(content):
        m = _TOKEN.match(content, i)
        if not m or m.end() == i:
            i += 1
            continue
        i = m.end()
        comment, paren, hexstr, name, bracket, number, op = m.groups()
        if comment:
            continue
        if paren:
            text, i = _string(content, i)
            operands.append(text)
        elif hexstr:
            operands.append(bytes.fromhex(hexstr[1:-1].decode().replace(" ", "")))
        elif number:
            operands.append(float(number))
        elif name or bracket:
            operands.append((name or bracket).decode("latin-1"))
        elif op:
            word = op.decode()
            nums = [x for x in operands if isinstance(x, float)]
            if word == "q":
                stack.append(ctm)
            elif word == "Q" and stack:
                ctm = stack.pop()
            elif word == "cm" and len(nums) >= 6:
                ctm = _mul(nums[-6:], ctm)
            elif word == "BT":
                tm = [1.0, 0, 0, 1.0, 0, 0]
            elif word == "Tm" and len(nums) >= 6:
                tm = nums[-6:]
            elif word == "Tf" and nums:
                size = nums[-1]
            elif word in ("Tj", "TJ", "'", '"'):
                text = b"".join(x for x in operands if isinstance(x, bytes)).decode("latin-1")
                full = _mul(tm, ctm)
                out.append(Run(text, abs(size) * math.hypot(full[2], full[3])))
            operands = []
    return out


def pages(pdf: Path) -> list[list[Run]]:
    """The text runs of each page of ``pdf``, in page order."""
    data = pdf.read_bytes()
    out = []
    for m in re.finditer(rb"stream\r?\n", data):
        head = data[data.rfind(b" obj", 0, m.start()):m.start()]  # the stream's dictionary
        if re.search(rb"/(Form|XObject|ObjStm|XRef|Metadata|Length1|Length2|Subtype)\b", head):
            continue
        end = data.find(b"endstream", m.end())
        raw = data[m.end():end]
        try:
            content = zlib.decompressobj().decompress(raw) if b"FlateDecode" in head else raw
        except zlib.error:
            continue
        if b"BT" in content and b"Tf" in content:
            out.append(_runs(content))
    return out
