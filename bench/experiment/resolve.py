"""Resolving a run: a partial run description checked key by key and filled from the paper's recipe.

>>> cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "isda", "seed": 1})
>>> cfg.lambda0, cfg.cov_mode, cfg.epochs
(0.5, 'full', 30)
>>> cfg.run_id == resolve(cfg.to_dict()).run_id
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bench import methods
from bench.common import bounds
from bench.common.errors import ConfigError
from bench.experiment.archs import ARCHS
from bench.experiment.datasets import DATASETS, NAMES
from bench.experiment.recipes import RECIPES, randaugment_for, recipe_for, scale_milestones
from bench.experiment.runconfig import COMPILE, DEVICES, PRECISIONS, SCHEDULES, TRACKING, RunConfig, run_field_names
from bench.methods import parse_method

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_RECIPE_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                  "milestones", "gamma", "schedule_offset", "drop_rate")


def _check_type(key: str, value: Any, kind: str) -> Any:
    """Strict typing for user input: YAML's 1 is not a bool, "3" is not an int."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "an integer")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, value, "a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(key, value, "a finite number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(key, value, "a string")
        return value
    if kind == "strs":
        if isinstance(value, str):
            value = [value]
        if isinstance(value, bytes) or not hasattr(value, "__iter__"):
            raise ConfigError(key, value, "a list of strings")
        return tuple(dict.fromkeys(_check_type(key, v, "str") for v in value))
    if kind == "ints":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(key, value, "a list of integers")
        return tuple(_check_type(key, v, "int") for v in value)
    raise AssertionError(kind)


_KINDS = {
    "dataset": "str", "arch": "str", "method": "str", "world_size": "int", "train_size": "int", "seed": "int",
    "epochs": "int",
    "batch_size": "int", "lr": "float",
    "momentum": "float", "nesterov": "bool", "weight_decay": "float", "schedule": "str",
    "milestones": "ints", "gamma": "float", "schedule_offset": "int", "drop_rate": "float",
    "precision": "str", "sweep": "str", "data_root": "str", "download": "bool", "device": "str",
    "threads": "int", "fast_loader": "bool", "channels_last": "bool", "workers": "int", "tracking": "str",
    "compile": "str", "randaugment_n": "int", "randaugment_m": "int", "recipe": "str", "plugins": "strs",
}
_CHOICES = {"dataset": NAMES, "schedule": SCHEDULES, "recipe": RECIPES,
            "precision": PRECISIONS, "device": DEVICES, "tracking": TRACKING, "compile": COMPILE}


def _check_train_size(size: int, dataset: str) -> None:
    """Refuse a subset the dataset cannot give; bench.data.subset checks the loaded files again."""
    facts = DATASETS[dataset]
    if size > facts.train_images:
        raise ConfigError("train_size", size, f"at most {facts.train_images}, the training images of {dataset}")
    if size < facts.classes:
        raise ConfigError("train_size", size, f"at least {facts.classes}, one image for each class of "
                          f"{dataset}")


def resolve(spec: Mapping[str, Any]) -> RunConfig:
    """Validate a partial run description and fill it from the paper's recipe and method defaults.

    The ``plugins`` it names are imported first: their losses and parameters are then known here;
    the run keeps their module names (``my_losses`` for ``my_losses.py``).
    """
    from bench.methods.plugins import broken_note, load

    modules = None
    if spec.get("plugins") is not None:
        modules = tuple(info.module for info in load(_check_type("plugins", spec["plugins"], "strs"), key="plugins"))
    names = run_field_names()
    unknown = sorted(set(spec) - set(names))
    if unknown:
        raise ConfigError(unknown[0], spec[unknown[0]], f"valid keys: {', '.join(names)}{broken_note()}")
    values: dict[str, Any] = {}
    given: dict[str, Any] = {}  # method parameters, checked once the method is known
    for key, value in spec.items():
        if value is None:
            continue
        if key not in _KINDS:
            given[key] = value
            continue
        value = _check_type(key, value, _KINDS[key])
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(key, value, _CHOICES[key])
        if key in bounds.BOUNDS:
            for number in value if isinstance(value, tuple) else (value,):
                bounds.check(key, key, number)
        values[key] = modules if key == "plugins" else value
    dataset = values.get("dataset", RunConfig.dataset)
    arch = values.get("arch", RunConfig.arch)
    if arch not in ARCHS:
        raise ConfigError("arch", arch, sorted(ARCHS))
    if "sweep" in values and not NAME_RE.match(values["sweep"]):
        raise ConfigError("sweep", values["sweep"], "letters, digits, '_', '.', '-' (no path separators)")
    size, smallest = DATASETS[dataset].image_size, ARCHS[arch].min_size
    if size < smallest:  # its pooling would shrink the feature map to nothing: refused before any file
        raise ConfigError("arch", arch, f"a network for {size}×{size} images ({arch} needs at least "
                          f"{smallest}×{smallest}; dataset {dataset})")
    if "train_size" in values and dataset != "imagenet":
        _check_train_size(values["train_size"], dataset)
    if values.get("drop_rate", 0.0) > 0 and not ARCHS[arch].dropout:
        raise ConfigError("drop_rate", values["drop_rate"], f"0 for {arch}, which has no dropout ({_with_dropout()})")
    if "milestones" in values:
        # The decay counts the milestones passed, so their order does not matter: one order, one run id.
        values["milestones"] = tuple(sorted(values["milestones"]))
    method = parse_method(values.get("method", RunConfig.method))
    values["method"] = method.name
    if method.dropout and not ARCHS[arch].dropout:
        raise ConfigError("method", method.name, f"a method without +{methods.DROPOUT} for {arch}, which has no "
                          f"dropout ({_with_dropout()})")
    declared = methods.get_loss(method.loss).params
    for key, value in given.items():
        if key not in declared:
            raise ConfigError(key, value, f"only for methods using it (method {method.name!r} has "
                              f"parameters: {', '.join(declared) or 'none'})")
        given[key] = declared[key].check(key, value)
    # A default that follows the recipe is checked like a given value: a plugin's function may be wrong.
    values["params"] = tuple((k, given[k] if k in given else p.check(k, p.default_for(dataset, arch)))
                             for k, p in declared.items())

    _randaugment(values, method.augment, dataset, arch)
    name = values.get("recipe", RunConfig.recipe)
    if name != "tpami" and dataset != "imagenet":
        raise ConfigError("recipe", name, f"tpami for dataset {dataset} (the NeurIPS and TPAMI recipes differ on "
                          "imagenet only)")
    recipe = recipe_for(dataset, arch, name)
    for key in _RECIPE_FIELDS:
        values.setdefault(key, getattr(recipe, key))
    if method.dropout and values["drop_rate"] == 0:
        # The supplement's "0.3 ... if it is not applied in the basic model": the network's own
        # dropout at that rate, so the run's config says where it trains with dropout.
        values["drop_rate"] = methods.DROPOUT_RATE
    if "milestones" not in spec or spec.get("milestones") is None:
        # A cosine schedule has no decay points, whichever schedule the recipe had.
        values["milestones"] = () if values["schedule"] == "cosine" else scale_milestones(
            recipe.milestones, recipe.epochs, values["epochs"], values["schedule_offset"])
    return replace(RunConfig(), **values)


def _with_dropout() -> str:
    return "networks with dropout: " + ", ".join(sorted(a for a, info in ARCHS.items() if info.dropout))


def _randaugment(values: dict[str, Any], augment: str, dataset: str, arch: str) -> None:
    """RandAugment's (N, M): the recipe's where the method uses RandAugment, refused elsewhere."""
    if augment == "randaugment":
        setting = randaugment_for(dataset, arch)
        values.setdefault("randaugment_n", setting.n)
        values.setdefault("randaugment_m", setting.m)
        return
    for key in ("randaugment_n", "randaugment_m"):
        if key in values:
            raise ConfigError(key, values[key], f"only for methods with randaugment (method {values['method']!r} "
                              "has none)")
