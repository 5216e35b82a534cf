import pytest
import yaml

from bench.common.errors import ConfigError
from bench.sweep.spec import load_sweep, parse_sweep


def test_method_axes_multiply_only_their_methods():
    sweep = parse_sweep({"grid": {"method": ["ce", "isda", "focal"], "lambda0": [0.25, 0.5],
                                  "focal_gamma": [1.0, 2.0], "seed": [0, 1]}}, "s")
    by_method = {}
    for cfg in sweep.runs:
        by_method.setdefault(cfg.method, []).append(cfg)
    assert len(by_method["ce"]) == 2 and len(by_method["isda"]) == 4 and len(by_method["focal"]) == 4
    assert {c.lambda0 for c in by_method["isda"]} == {0.25, 0.5}
    assert all(c.lambda0 is None and c.focal_gamma is None for c in by_method["ce"])
    assert all(c.sweep == "s" for c in sweep.runs)
    assert len({c.run_id for c in sweep.runs}) == 10


def test_overrides_include_exclude_and_duplicates():
    sweep = parse_sweep({
        "name": "x", "grid": {"method": ["ce", "isda"], "seed": [0, 1]},
        "overrides": {"epochs": 3, "lambda0": 0.75},
        "include": [{"method": "isda", "seed": 7}, {"method": "ce", "seed": 0}],
        "exclude": [{"method": "ce", "seed": 1}],
    }, "ignored")
    assert sweep.name == "x"
    slugs = sorted(c.slug for c in sweep.runs)
    assert slugs == sorted(["digits-resnet32-ce-s0", "digits-resnet32-isda-l0.75-s0",
                            "digits-resnet32-isda-l0.75-s1", "digits-resnet32-isda-l0.75-s7"])
    assert all(c.epochs == 3 for c in sweep.runs)


def test_a_method_axis_multiplies_the_method_given_in_overrides():
    sweep = parse_sweep({"grid": {"lambda0": [0.1, 0.5, 1.0], "seed": [0]}, "overrides": {"method": "isda"}}, "s")
    assert sorted(c.lambda0 for c in sweep.runs) == [0.1, 0.5, 1.0] and {c.method for c in sweep.runs} == {"isda"}


def test_exclude_matches_the_resolved_runs():
    """Method aliases, values from overrides and recipe values count, as in the run's config.yaml."""
    grid = {"method": ["ce", "Cutout+ISDA", "isda"], "seed": [0, 1]}
    sweep = parse_sweep({"grid": grid, "overrides": {"lambda0": 0.75},
                         "exclude": [{"method": "isda+cutout"}, {"lambda0": 0.75, "seed": 1},
                                     {"method": "ce", "epochs": 30, "seed": 0}]}, "s")
    assert sorted(c.slug for c in sweep.runs) == ["digits-resnet32-ce-s1", "digits-resnet32-isda-l0.75-s0"]


def test_name_defaults_to_stem(tmp_path):
    path = tmp_path / "my-sweep.yaml"
    path.write_text(yaml.safe_dump({"grid": {"method": ["ce"]}}))
    assert load_sweep(path).name == "my-sweep"


@pytest.mark.parametrize("text, key", [
    ("", "sweep"),
    ("[1, 2]", "sweep"),
    ("grid: {method: [ce]}\nfoo: 1\n", "foo"),
    ("grid: {dataset: [mnist]}\n", "dataset"),
    ("grid: {method: []}\n", "grid.method"),
    ("grid: {methods: [ce]}\n", "grid.methods"),
    ("name: ../../etc\ngrid: {method: [ce]}\n", "name"),
    ("name: a/b\ngrid: {method: [ce]}\n", "name"),
    ("grid: {method: [ce], epochs: [-1]}\n", "epochs"),
    ("grid: {method: [ce]}\noverrides: {epochs: ten}\n", "epochs"),
    ("grid: {method: [ce]}\nunsafe: !!python/object/apply:os.system [echo hi]\n", "sweep"),
    ("grid: {method: [ce]\n", "sweep"),
    ("grid: {method: [ce], lambda0: [abc]}\n", "grid.lambda0"),  # no method of the sweep takes it
    ("grid: {method: [ce, focal]}\nexclude: [{methd: focal}]\n", "exclude.methd"),
    ("grid: {method: [ce, focal]}\nexclude: [{method: focl}]\n", "method"),
    ("grid: {method: [ce, focal]}\nexclude: [{method: isda}]\n", "exclude"),  # matches nothing
    ("grid: {method: [ce]}\nexclude: [{method: ce}]\n", "exclude"),  # leaves nothing
])
def test_bad_sweeps_name_the_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert info.value.key == key


def test_smoke_sweep_is_the_documented_matrix():
    sweep = load_sweep("sweeps/smoke.yaml")
    assert sweep.name == "smoke"
    assert sorted({c.method for c in sweep.runs}) == ["autoaugment", "ce", "focal", "isda"]
    assert len(sweep.runs) == 12 and {c.seed for c in sweep.runs} == {0, 1, 2}


def test_numbers_in_exponent_form_are_numbers_in_sweeps_and_set(tmp_path):
    """YAML 1.1 reads 5e-4 (no decimal point) as a string; people write it for weight decay and lr."""
    from bench.cli.plans import parse_set as _parse_set

    path = tmp_path / "wd.yaml"
    path.write_text("grid: {method: [ce]}\noverrides: {weight_decay: 5e-4, lr: 1E-1, epochs: 2}\n")
    (cfg,) = load_sweep(path).runs
    assert (cfg.weight_decay, cfg.lr) == (0.0005, 0.1)
    assert _parse_set(["weight_decay=5e-4", "milestones=[1e0]", "method=isda"]) == {
        "weight_decay": 0.0005, "milestones": [1.0], "method": "isda"}
