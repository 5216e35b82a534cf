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

from bench import methods
from bench.common import bounds
from bench.common.errors import ConfigError
from bench.experiment.recipes import RECIPES, randaugment_for, recipe_for, scale_milestones
from bench.methods import parse_method

DATASETS = ("digits", "synthetic", "cifar10", "cifar100", "fashion_mnist", "imagenet")
# What bench.data.loaders loads. imagenet is any ImageFolder: its numbers are ILSVRC-2012's, and a train_size is
# checked against the folder itself when it loads.
IMAGE_SIZES = {"digits": 8, "synthetic": 32, "cifar10": 32, "cifar100": 32, "fashion_mnist": 28, "imagenet": 224}
TRAIN_IMAGES = {"digits": 1437, "synthetic": 1000, "cifar10": 50_000, "cifar100": 50_000, "fashion_mnist": 60_000,
                "imagenet": 1_281_167}
TEST_IMAGES = {"digits": 360, "synthetic": 500, "cifar10": 10_000, "cifar100": 10_000, "fashion_mnist": 10_000,
               "imagenet": 50_000}
NUM_CLASSES = {"digits": 10, "synthetic": 10, "cifar10": 10, "cifar100": 100, "fashion_mnist": 10, "imagenet": 1000}
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
    # Train on a stratified subset of this many training images (bench.data.subset), the same one for every
    # method and seed; None: the whole training set.
    train_size: int | None = None
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
    # RandAugment's operations per image and magnitude (bench.experiment.recipes.RANDAUGMENT), for methods with
    # RandAugment only (None for the others).
    randaugment_n: int | None = None
    randaugment_m: int | None = None
    # The paper whose recipe fills the fields above (bench.experiment.recipes): the journal's or the conference's.
    recipe: str = "tpami"
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
    tracking: str = "auto"  # W&B: online when logged in, else offline; see bench.tracking.wandb_tracker
    # torch.compile of the training forward and loss (bench.train.trainer): a torch.compile mode, or off;
    # reduce-overhead adds CUDA graphs on GPU; cudagraphs: CUDA graphs of torch's own kernels, no
    # code generation (no Triton needed). Same computation, other kernels: rounding may differ.
    compile: str = "off"
    # Modules that register losses (bench.methods.plugins), imported before the run is resolved, in this
    # process and in every process that trains it; what they compute is named by method and params.
    plugins: tuple[str, ...] = ()

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
        d["plugins"] = list(self.plugins)
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
        for key, value in self.params:
            label = methods.param(key).label  # None: name=value; "": not shown; else label and value
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            if label is None:
                parts.append(f"{key}={shown}")
            elif label:
                parts.append(f"{label}{shown}")
        if self.isda_sync == "local":
            parts.append("local")
        if self.cov_mode is not None and self.cov_mode != recipe_for(self.dataset, self.arch).cov_mode:
            parts.append(self.cov_mode)
        if self.param("lambda_schedule") == "constant":
            parts.append("const")
        if self.randaugment_n is not None:
            parts.append(f"N{self.randaugment_n}M{self.randaugment_m}")
        if self.recipe != "tpami":
            parts.append(self.recipe)
        if self.world_size > 1:
            parts.append(f"w{self.world_size}")
        if self.train_size is not None:
            parts.append(f"n{self.train_size}")
        parts.append(f"s{self.seed}")
        return "-".join(parts)


_SCHEDULING = ("sweep", "data_root", "download", "device", "threads", "fast_loader", "channels_last", "workers",
               "tracking", "compile", "plugins")
# The method parameters of the first run ids: every run's config has them (None where its method does
# not take them), and lambda0, cov_mode and focal_gamma are hashed into every run id, None or not.
ID_PARAMS = ("lambda0", "cov_mode", "isda_sync", "focal_gamma")
_HASHED_ALWAYS = ("lambda0", "cov_mode", "focal_gamma")
FIELD_NAMES = tuple(f.name for f in fields(RunConfig) if f.name != "params") + ID_PARAMS
EXPERIMENT_FIELDS = tuple(n for n in FIELD_NAMES if n not in _SCHEDULING)
# See RunConfig.run_id. Earlier runs were single-process, with the journal's recipes, on the whole
# training set; only RandAugment runs have RandAugment settings.
_ID_IMPLICIT: dict[str, tuple[Any, ...]] = {"world_size": (1,), "randaugment_n": (None,), "randaugment_m": (None,),
                                            "recipe": ("tpami",), "train_size": (None,)}
# The keys of result.json (bench.train.trainer.summarise) and of metrics.csv besides the run fields and the
# methods' parameters: a parameter of that name would overwrite one of them.
RESULT_KEYS = ("run_id", "epochs_done", "status", "final_test_error", "best_test_error", "last10_test_error",
               "final_top5_test_error", "last10_top5_test_error", "wall_time_s", "images_per_s", "num_params",
               "torch_version", "git_sha", "versions", "failed_epoch", "reason", "traceback", "epoch", "lambda",
               "train_loss", "train_error", "test_loss", "test_error", "test_top5_error", "epoch_time_s")
methods.registry.RESERVED_PARAM_NAMES.update((set(FIELD_NAMES) - set(ID_PARAMS)) | set(RESULT_KEYS))


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
_CHOICES = {"dataset": DATASETS, "schedule": SCHEDULES, "recipe": RECIPES,
            "precision": PRECISIONS, "device": DEVICES, "tracking": TRACKING, "compile": COMPILE}


def _check_train_size(size: int, dataset: str) -> None:
    """Refuse a subset the dataset cannot give; bench.data.subset checks the loaded files again."""
    if size > TRAIN_IMAGES[dataset]:
        raise ConfigError("train_size", size, f"at most {TRAIN_IMAGES[dataset]}, the training images of {dataset}")
    if size < NUM_CLASSES[dataset]:
        raise ConfigError("train_size", size, f"at least {NUM_CLASSES[dataset]}, one image for each class of "
                          f"{dataset}")


def resolve(spec: Mapping[str, Any]) -> RunConfig:
    """Validate a partial run description and fill it from the paper's recipe and method defaults.

    The ``plugins`` it names are imported first: their losses and parameters are then known here.
    """
    if spec.get("plugins") is not None:
        from bench.methods.plugins import load

        load(_check_type("plugins", spec["plugins"], "strs"), key="plugins")
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
    if "train_size" in values and dataset != "imagenet":
        _check_train_size(values["train_size"], dataset)
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
    if "milestones" not in spec or spec.get("milestones") is None:
        # A cosine schedule has no decay points, whichever schedule the recipe had.
        values["milestones"] = () if values["schedule"] == "cosine" else scale_milestones(
            recipe.milestones, recipe.epochs, values["epochs"], values["schedule_offset"])
    return replace(RunConfig(), **values)


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
