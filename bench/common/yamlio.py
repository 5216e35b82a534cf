"""The one reader of the YAML users write: sweeps, SLURM profiles and ``--set`` values.

It reads safe YAML with two changes that make a file mean what its author wrote:

- numbers in exponent form (``5e-4``) are floats, as in YAML 1.2 (YAML 1.1 reads them as strings);
- every mapping key, at any depth, is a string written once: YAML 1.1 reads ``on:``, ``no:`` or
  ``1:`` as a boolean or a number, which no sweep field is called, and a key written twice would
  silently drop its first value.

Whatever is wrong (a parse error, such a key, nesting too deep to read) is one line with the line
number: ``YamlProblem`` for a text, a ConfigError naming the option for a file (``read_yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from bench.common.errors import ConfigError
from bench.common.paths import input_file

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_READ_AS = {"tag:yaml.org,2002:bool": "a boolean", "tag:yaml.org,2002:int": "an integer",
            "tag:yaml.org,2002:float": "a number", "tag:yaml.org,2002:null": "null"}


class YamlProblem(ValueError):
    """Text that is not the YAML this project reads; the message is one line."""


class _Loader(yaml.SafeLoader):
    """Safe YAML with exponent floats, refusing mapping keys that are not strings or repeat."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[str, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<: *anchor`: keys written here override the merged ones
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR:
                raise ConstructorError(None, None, _key_problem(key_node), key_node.start_mark)
            if key_node.value in first:
                line = first[key_node.value].start_mark.line + 1
                raise ConstructorError(None, None, f"key {key_node.value!r} is written twice in one mapping "
                                       f"(first at line {line}); write it once", key_node.start_mark)
            first[key_node.value] = key_node
        return super().construct_mapping(node, deep=deep)


def _key_problem(node: Node) -> str:
    if not isinstance(node, ScalarNode):
        return "a key that is a list or a mapping; keys are names"
    read_as = _READ_AS.get(node.tag, f"a {node.tag.rsplit(':', 1)[-1]}")
    written = node.value or "~"
    return f"key {written!r} is read as {read_as}, not a name; quote it (\"{written}\") if it is one"


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(exc: yaml.YAMLError, text: str) -> str:
    """The parser's complaint as one line, led by where it is."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML refuses: it knows the offset only
        line = text.count("\n", 0, max(0, exc.position)) + 1
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        return _one_line(f"parse error at line {line}: character {char} is not allowed ({exc.reason})")
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = exc.problem or exc.context or "malformed"
        if exc.context and exc.problem and exc.context_mark is not None:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return _one_line(f"parse error {where}: {what}" if where else f"parse error: {what}")
    return _one_line(f"parse error: {exc}")


def parse_yaml(text: str) -> Any:
    """What ``text`` says; YamlProblem (one line, with the line number where the parser gives one) when
    it is not YAML this project reads."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader: tags cannot construct objects
    except yaml.YAMLError as exc:
        raise YamlProblem(_describe(exc, text)) from None
    except RecursionError:
        raise YamlProblem("lists or mappings nested too deeply to read (at most a few hundred levels)") from None


def read_yaml(path: Path | str, key: str) -> Any:
    """A YAML file the user named with ``key``; a path, a file or a text this cannot read is a ConfigError."""
    path = input_file(path, key)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(key, str(path), "a UTF-8 text file (this one holds other bytes)") from exc
    except OSError as exc:
        raise ConfigError(key, str(path), f"a file that can be read ({exc.strerror or exc})") from exc
    try:
        return parse_yaml(text)
    except YamlProblem as exc:
        raise ConfigError(key, str(path), f"well-formed YAML ({exc})") from None
