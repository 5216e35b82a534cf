"""RunConfig: one training run, every field resolved, with its stable id and its readable name (slug).

The fields, the values the fixed-choice ones take, and which of them make up the experiment (and so
the run id); bench.experiment.resolve turns a partial description into one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from bench import methods
from bench.common.errors import ConfigError

SCHEDULES = ("step", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
TRACKING = ("auto", "online", "offline", "disabled")
COMPILE = ("off", "default", "reduce-overhead", "max-autotune", "cudagraphs")


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
    tracking: str = "auto"  # W&B: online when logged in, else offline; see bench.tracking.modes
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

    def record(self) -> dict[str, Any]:
        """What config.yaml holds, and what a run is planned and tracked as: its id, then every field."""
        return {"run_id": self.run_id, **self.to_dict()}

    @property
    def experiment(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: v for k, v in d.items() if k not in _SCHEDULING}

    @property
    def run_id(self) -> str:
        # Fields and parameters added after ids were first handed out are left out of the hash while
        # they hold the value every earlier run implicitly had, so existing result folders keep their names.
        omitted: dict[str, tuple[Any, ...]] = {k: (None,) for k in ID_PARAMS if k not in _HASHED_ALWAYS}
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
        cov_default = methods.param("cov_mode").default_for(self.dataset, self.arch)
        if self.cov_mode is not None and self.cov_mode != cov_default:
            parts.append(self.cov_mode)
        if "constant" in (self.param("lambda_schedule"), self.param("center_lr_schedule")):
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
# The keys of result.json (bench.train.result.summarise) and of metrics.csv besides the run fields and the
# methods' parameters: a parameter of that name would overwrite one of them.
RESULT_KEYS = ("run_id", "epochs_done", "status", "final_test_error", "best_test_error", "last10_test_error",
               "final_top5_test_error", "last10_top5_test_error", "wall_time_s", "images_per_s", "num_params",
               "torch_version", "git_sha", "versions", "failed_epoch", "reason", "traceback", "epoch", "lambda",
               "train_loss", "train_error", "test_loss", "test_error", "test_top5_error", "epoch_time_s",
               "method_code")
methods.registry.reserve_param_names((set(FIELD_NAMES) - set(ID_PARAMS)) | set(RESULT_KEYS))


def run_field_names() -> tuple[str, ...]:
    """Every key a run takes: the fields, then the parameters of every registered loss.

    A loss registered before this module was imported could not be told which names are taken; its
    parameter is refused here instead."""
    for key, module in methods.registry.shadowing_params():
        raise ConfigError(key, module, "a parameter name that is not a run field or a result.json key "
                          "(a loss of this module declares it; rename it in the plugin)")
    return FIELD_NAMES + tuple(k for k in methods.param_names() if k not in FIELD_NAMES)


def experiment_keys() -> tuple[str, ...]:
    """The keys that make up an experiment: EXPERIMENT_FIELDS and every loss parameter."""
    return EXPERIMENT_FIELDS + tuple(k for k in methods.param_names() if k not in EXPERIMENT_FIELDS)
