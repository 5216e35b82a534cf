"""RunConfig: one training run, fully resolved, validated, and named by a stable id.

>>> cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "isda", "seed": 1})
>>> cfg.lambda0, cfg.cov_mode, cfg.epochs
(0.5, 'full', 30)
>>> cfg.run_id == resolve(cfg.to_dict()).run_id
True
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from bench import bounds, methods
from bench.errors import ConfigError
from bench.methods import parse_method
from bench.recipes import recipe_for, scale_milestones

DATASETS = ("digits", "synthetic", "cifar10", "cifar100", "imagenet")
IMAGE_SIZES = {"digits": 8, "synthetic": 32, "cifar10": 32, "cifar100": 32, "imagenet": 224}  # bench.data
SCHEDULES = ("step", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
TRACKING = ("auto", "online", "offline", "disabled")
COMPILE = ("off", "default", "reduce-overhead", "max-autotune", "cudagraphs")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class RunConfig:
    # --- the experiment: these fields (and only these) make up the run id ---
    dataset: str = "digits"
    arch: str = "resnet32"
    method: str = "ce"
    # The values of the parameters the method's loss declares (bench.methods), in declaration order.
    # They are run fields like the others: config.yaml, --set and sweep axes name them directly.
    params: tuple[tuple[str, Any], ...] = ()
    # Training processes (GPUs) of the run, set from a sweep's `resources`. BatchNorm normalises each
    # process's share of the batch, so results depend on it; the run refuses another process count.
    world_size: int = 1
    seed: int = 0
    epochs: int = 0
    batch_size: int = 0
    lr: float = 0.0
    momentum: float = 0.0
    nesterov: bool = True
    weight_decay: float = 0.0
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    schedule_offset: int = 1
    drop_rate: float = 0.0
    precision: str = "auto"
    # --- scheduling: where and how it runs, not what it computes ---
    sweep: str = "adhoc"
    data_root: str | None = None
    download: bool = False
    device: str = "auto"
    threads: int = 0  # 0: torch's default
    fast_loader: bool = True  # dataset resident on the device, batched augmentation
    channels_last: bool = True  # on CUDA: NHWC activations, the layout of the tensor cores' convolutions
    workers: int = 0  # DataLoader workers for per-image transforms (AutoAugment, ImageNet JPEGs)
    tracking: str = "auto"  # W&B: online when logged in, else offline; see bench.tracking
    # torch.compile of the training forward and loss (bench.train): a torch.compile mode, or off;
    # reduce-overhead adds CUDA graphs on GPU; cudagraphs: CUDA graphs of torch's own kernels, no
    # code generation (no Triton needed). Same computation, other kernels: rounding may differ.
    compile: str = "off"

    def param(self, name: str) -> Any:
        """The value of the method's parameter ``name``; None if the method does not take it."""
        return dict(self.params).get(name)

    @property
    def lambda0(self) -> float | None:
        return self.param("lambda0")

    @property
    def cov_mode(self) -> str | None:
        return self.param("cov_mode")

    @property
    def isda_sync(self) -> str | None:
        return self.param("isda_sync")

    @property
    def focal_gamma(self) -> float | None:
        return self.param("focal_gamma")

    def to_dict(self) -> dict[str, Any]:
        """Every field, with the method's parameters as fields of their own after ``method``."""
        d = asdict(self)
        del d["params"]
        d["milestones"] = list(self.milestones)
        head = {k: d.pop(k) for k in ("dataset", "arch", "method")}
        return {**head, **dict.fromkeys(ID_PARAMS), **dict(self.params), **d}

    @property
    def experiment(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: v for k, v in d.items() if k not in _SCHEDULING}

    @property
    def run_id(self) -> str:
        # Fields and parameters added after ids were first handed out are left out of the hash while
        # they hold the value every earlier run implicitly had, so existing result folders keep their names.
        omitted = {k: (None,) for k in ID_PARAMS if k not in _HASHED_ALWAYS}
        omitted.update(_ID_IMPLICIT)
        for key, _ in self.params:
            if methods.param(key).id_default:
                omitted[key] = (None, methods.param(key).default_for(self.dataset, self.arch))
        experiment = {k: v for k, v in self.experiment.items() if v not in omitted.get(k, ())}
        blob = json.dumps(experiment, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def slug(self) -> str:
        """Readable name: cifar100-wrn28_10-isda-l0.5-s3."""
        parts = [self.dataset, self.arch, self.method]
        if self.lambda0 is not None:
            parts.append(f"l{self.lambda0:g}")
        if self.focal_gamma is not None:
            parts.append(f"g{self.focal_gamma:g}")
        if self.isda_sync == "local":
            parts.append("local")
        for key, value in self.params:
            label = methods.param(key).label
            if label is None:
                parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
        if self.world_size > 1:
            parts.append(f"w{self.world_size}")
        parts.append(f"s{self.seed}")
        return "-".join(parts)


_SCHEDULING = ("sweep", "data_root", "download", "device", "threads", "fast_loader", "channels_last", "workers",
               "tracking", "compile")
# The method parameters of the first run ids: every run's config has them (None where its method does
# not take them), and lambda0, cov_mode and focal_gamma are hashed into every run id, None or not.
ID_PARAMS = ("lambda0", "cov_mode", "isda_sync", "focal_gamma")
_HASHED_ALWAYS = ("lambda0", "cov_mode", "focal_gamma")
FIELD_NAMES = tuple(f.name for f in fields(RunConfig) if f.name != "params") + ID_PARAMS
EXPERIMENT_FIELDS = tuple(n for n in FIELD_NAMES if n not in _SCHEDULING)
# See RunConfig.run_id. Earlier runs were single-process.
_ID_IMPLICIT: dict[str, tuple[Any, ...]] = {"world_size": (1,)}
methods.registry.RESERVED_PARAM_NAMES.update(set(FIELD_NAMES) - set(ID_PARAMS))


def run_field_names() -> tuple[str, ...]:
    """Every key a run takes: the fields, then the parameters of every registered loss."""
    return FIELD_NAMES + tuple(k for k in methods.param_names() if k not in FIELD_NAMES)


def experiment_keys() -> tuple[str, ...]:
    """The keys that make up an experiment: EXPERIMENT_FIELDS and every loss parameter."""
    return EXPERIMENT_FIELDS + tuple(k for k in methods.param_names() if k not in EXPERIMENT_FIELDS)
_RECIPE_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "schedule",
                  "milestones", "gamma", "schedule_offset", "drop_rate")


def _archs() -> dict[str, Any]:
    """bench.models.ARCHS, imported when first needed: it loads torch and timm."""
    from bench.models import ARCHS

    return ARCHS


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
    if kind == "ints":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(key, value, "a list of integers")
        return tuple(_check_type(key, v, "int") for v in value)
    raise AssertionError(kind)


_KINDS = {
    "dataset": "str", "arch": "str", "method": "str", "world_size": "int", "seed": "int", "epochs": "int",
    "batch_size": "int", "lr": "float",
    "momentum": "float", "nesterov": "bool", "weight_decay": "float", "schedule": "str",
    "milestones": "ints", "gamma": "float", "schedule_offset": "int", "drop_rate": "float",
    "precision": "str", "sweep": "str", "data_root": "str", "download": "bool", "device": "str",
    "threads": "int", "fast_loader": "bool", "channels_last": "bool", "workers": "int", "tracking": "str",
    "compile": "str",
}
_CHOICES = {"dataset": DATASETS, "schedule": SCHEDULES,
            "precision": PRECISIONS, "device": DEVICES, "tracking": TRACKING, "compile": COMPILE}


def resolve(spec: Mapping[str, Any]) -> RunConfig:
    """Validate a partial run description and fill it from the paper's recipe and method defaults."""
    names = run_field_names()
    unknown = sorted(set(spec) - set(names))
    if unknown:
        raise ConfigError(unknown[0], spec[unknown[0]], f"valid keys: {', '.join(names)}")
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
        values[key] = value
    dataset = values.get("dataset", RunConfig.dataset)
    arch = values.get("arch", RunConfig.arch)
    archs = _archs()
    if arch not in archs:
        raise ConfigError("arch", arch, sorted(archs))
    if "sweep" in values and not NAME_RE.match(values["sweep"]):
        raise ConfigError("sweep", values["sweep"], "letters, digits, '_', '.', '-' (no path separators)")
    size, smallest = IMAGE_SIZES[dataset], archs[arch].min_size
    if size < smallest:  # its pooling would shrink the feature map to nothing: refused before any file
        raise ConfigError("arch", arch, f"a network for {size}×{size} images ({arch} needs at least "
                          f"{smallest}×{smallest}; dataset {dataset})")
    if values.get("drop_rate", 0.0) > 0 and not archs[arch].dropout:
        raise ConfigError("drop_rate", values["drop_rate"], f"0 for {arch}, which has no dropout (networks with "
                          f"dropout: {', '.join(sorted(a for a, info in archs.items() if info.dropout))})")
    if "milestones" in values:
        # The decay counts the milestones passed, so their order does not matter: one order, one run id.
        values["milestones"] = tuple(sorted(values["milestones"]))
    method = parse_method(values.get("method", RunConfig.method))
    values["method"] = method.name
    declared = methods.get_loss(method.loss).params
    for key, value in given.items():
        if key not in declared:
            raise ConfigError(key, value, f"only for methods using it (method {method.name!r} has "
                              f"parameters: {', '.join(declared) or 'none'})")
        given[key] = declared[key].check(key, value)
    values["params"] = tuple((k, given[k] if k in given else p.default_for(dataset, arch)) for k, p in declared.items())

    recipe = recipe_for(dataset, arch)
    for key in _RECIPE_FIELDS:
        values.setdefault(key, getattr(recipe, key))
    if "milestones" not in spec or spec.get("milestones") is None:
        values["milestones"] = scale_milestones(recipe.milestones, recipe.epochs, values["epochs"],
                                                values["schedule_offset"])
    return replace(RunConfig(), **values)
