"""The one YAML reader of sweeps, profiles and --set: keys are strings written once, at any depth,
and whatever it refuses is one line with the line number."""

from __future__ import annotations

import pytest

from bench.common.errors import ConfigError
from bench.common.yamlio import YamlProblem, parse_yaml


@pytest.mark.parametrize("key, read_as", [("on", "a boolean"), ("off", "a boolean"), ("yes", "a boolean"),
                                          ("No", "a boolean"), ("true", "a boolean"), ("1", "an integer"),
                                          ("0x1f", "an integer"), ("1.5", "a number"), ("5e-4", "a number"),
                                          ("~", "null"), ("null", "null")])
@pytest.mark.parametrize("template, line", [("{k}: 1\nname: x\n", 1),
                                            ("name: x\ngrid:\n  method: [ce]\n  {k}: [1]\n", 4),
                                            ("include:\n  - {{method: ce, {k}: 2}}\n", 2)])
def test_a_key_yaml_reads_as_no_name_is_refused_at_any_depth(key, read_as, template, line):
    with pytest.raises(YamlProblem) as exc:
        parse_yaml(template.format(k=key))
    msg = str(exc.value)
    assert f"line {line}," in msg and f"key '{key}' is read as {read_as}" in msg and "\n" not in msg


def test_quoted_keys_are_names():
    assert parse_yaml("'on': 1\n\"1\": 2\nyes_no: 3\n") == {"on": 1, "1": 2, "yes_no": 3}


@pytest.mark.parametrize("text, line, first", [
    ("grid: {method: [ce]}\nname: a\ngrid: {method: [isda]}\n", 3, 1),
    ("grid:\n  seed: [0]\n  method: [ce]\n  seed: [1]\n", 4, 2),
    ("include:\n  - method: ce\n    seed: 0\n    seed: 1\n", 4, 3),
    ("a: {b: {c: 1, c: 2}}\n", 1, 1),
])
def test_a_key_written_twice_is_refused_at_any_depth(text, line, first):
    with pytest.raises(YamlProblem) as exc:
        parse_yaml(text)
    assert f"line {line}," in str(exc.value) and f"(first at line {first})" in str(exc.value)


def test_merge_keys_still_merge_and_the_keys_written_win():
    assert parse_yaml("base: &b {epochs: 2, lr: 0.1}\nrun:\n  <<: *b\n  lr: 0.2\n") == {
        "base": {"epochs": 2, "lr": 0.1}, "run": {"epochs": 2, "lr": 0.2}}


def test_a_list_as_a_key_is_refused():
    with pytest.raises(YamlProblem, match="line 1, column 3: a key that is a list"):
        parse_yaml("? [a, b]\n: 1\n")


@pytest.mark.parametrize("text, where", [
    ("name: 'tiny\ngrid: {}\n", "line 3"),  # an unclosed quote: PyYAML's message spans four lines
    ("grid:\n  method: [ce]\n\tseed: [1]\n", "line 3"),
    ("grid: {method: [ce]}\x00\n", "line 1: character #x0000"),
    ("a: 1\n\nb: \x07\n", "line 3: character #x0007"),
    ("a: 1\n---\nb: 2\n", "line 2"),
    ("a: *nothing\n", "line 1"),
    ("a:\n  - 1\n - 2\n", "line 3"),
    ("[" * 3000 + "]" * 3000, "nested too deeply"),
])
def test_a_parse_error_is_one_line_with_where(text, where):
    with pytest.raises(YamlProblem) as exc:
        parse_yaml(text)
    assert where in str(exc.value) and "\n" not in str(exc.value)


def test_numbers_read_as_people_write_them():
    assert parse_yaml("wd: 5e-4\nlr: 1E-1\nm: [1e0, 2]\ns: '5e-4'\n") == {"wd": 5e-4, "lr": 0.1, "m": [1.0, 2],
                                                                     "s": "5e-4"}


BAD = "grid: {method: [ce]}\noverrides: {epochs: 2, epochs: 3}\n"


def test_sweeps_profiles_and_set_are_read_by_this_loader(tmp_path):
    """A duplicate key is refused the same way in a sweep, in a profile and in a --set value."""
    from bench.cli.plans import parse_set
    from bench.launch.profiles import load_profile
    from bench.sweep.spec import load_sweep

    (tmp_path / "s.yaml").write_text(BAD)
    (tmp_path / "p.yaml").write_text("partition: a\npartition: b\n")
    for call in (lambda: load_sweep(tmp_path / "s.yaml"), lambda: load_profile(str(tmp_path / "p.yaml")),
                 lambda: parse_set(["milestones={a: 1, a: 2}"])):
        with pytest.raises(ConfigError, match="is written twice in one mapping"):
            call()
