"""SLURM cluster profiles (slurm/profiles/*.yaml): where and how each run of a sweep is scheduled, validated.

A profile is a flat mapping of PROFILE_KEYS (the shipped files comment each); ``--profile`` or the sweep's
``profile`` names one by path or by bare name, and none gives the built-in defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.common.errors import ConfigError
from bench.common.shipped import shipped_dir, shipped_file, shipped_names
from bench.common.yamlio import read_yaml

REPO_PROFILES = shipped_dir("profiles")  # the shipped profiles; slurm/profiles/ in a checkout links here


@dataclass(frozen=True)
class Profile:
    """Where and how each run of a sweep is scheduled; one run = one array task = at most one GPU."""

    name: str = "default"
    description: str = ""
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    gpus_per_node: int = 1
    cpus_per_task: int = 8
    mem_gb: float | None = 32
    timeout_min: int = 24 * 60
    setup: tuple[str, ...] = ()
    array_parallelism: int = 64
    max_array_size: int = 1000  # SLURM's default MaxArraySize is 1001 (indices 0..1000)
    # Seconds between the warning signal and the kill: time to requeue. train.py checkpoints after
    # every epoch, so the signal only has to be heard, not to trigger a long save.
    signal_delay_s: int = 120
    max_num_timeout: int = 10  # time-limit requeues per run (preemptions do not count)
    sbatch: Mapping[str, Any] = field(default_factory=dict)  # any other #SBATCH option, verbatim
    source: str | None = None  # the file it came from

    def executor_parameters(self, job_name: str, world_size: int = 1, nodes: int = 1) -> dict[str, Any]:
        """submitit SlurmExecutor parameters (its native names) for runs of ``world_size`` processes.

        ``world_size``: the runs' processes, from their config (a sweep's `resources`, e.g. ImageNet's 8 GPUs),
        which overrides the profile's one device per run: then one task (process) per GPU, and cpus_per_task
        and mem_gb count per process. ``nodes``: over how many nodes they are spread (the sweep's
        `resources.nodes`). On a profile of CPU nodes (``gpus_per_node: 0``) the same number of processes
        is started and no GPU is requested."""
        if world_size < 1 or nodes < 1 or world_size % nodes:
            raise ConfigError("resources.nodes", nodes, f"a divisor of the runs' world_size ({world_size})")
        tasks = world_size // nodes  # per node
        params: dict[str, Any] = {
            "job_name": job_name, "time": self.timeout_min, "cpus_per_task": self.cpus_per_task,
            "signal_delay_s": self.signal_delay_s, "array_parallelism": self.array_parallelism,
            # Explicit, so `scontrol requeue` and submitit's own requeue work where JobRequeue=0.
            "additional_parameters": {"requeue": True, **dict(self.sbatch)},
        }
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.gpus_per_node:  # a profile of CPU nodes (gpus_per_node: 0) asks for none:
            params["gpus_per_node"] = tasks  # the run's processes are CPU processes (gloo)
        if nodes > 1 or tasks > 1:
            # A process that dies would leave the others waiting in a collective until its timeout
            # (30 min): srun ends the whole step instead, and the job fails at once.
            params.update(nodes=nodes, ntasks_per_node=tasks, srun_args=["--kill-on-bad-exit=1"])
        if self.mem_gb is not None:
            mem = self.mem_gb * tasks  # --mem is per node
            params["mem"] = f"{int(mem)}GB" if mem == int(mem) else f"{int(mem * 1024)}MB"
        if self.setup:
            params["setup"] = list(self.setup)
        return params


PROFILE_KEYS = tuple(f.name for f in fields(Profile) if f.name != "source")
_OPTIONAL_STR = ("partition", "account", "qos", "constraint")
_POSITIVE_INT = ("cpus_per_task", "timeout_min", "array_parallelism", "max_array_size", "signal_delay_s")


def _int(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(key, value, f"an integer >= {low}")
    return value


def parse_profile(data: Any, name: str = "default", source: str | None = None) -> Profile:
    """Validate a profile mapping; unknown keys are refused with the list of valid ones."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("profile", data, "a mapping with keys " + ", ".join(PROFILE_KEYS))
    unknown = sorted(set(data) - set(PROFILE_KEYS))
    if unknown:
        raise ConfigError(f"profile.{unknown[0]}", data[unknown[0]],
                          f"valid profile keys: {', '.join(PROFILE_KEYS)}")
    values: dict[str, Any] = {"name": name}
    for key, value in data.items():
        where = f"profile.{key}"
        if key in ("name", "description") + _OPTIONAL_STR:
            if value is not None and not isinstance(value, str):
                raise ConfigError(where, value, "a string")
            if key == "name" and value is None:
                continue
        elif key in _POSITIVE_INT:
            value = _int(where, value, 1)
        elif key == "max_num_timeout":
            value = _int(where, value, 0)
        elif key == "gpus_per_node":
            value = _int(where, value, 0)
            if value > 1:
                # train.py trains on one device; a bigger batch (DenseNet: 64) is still one GPU.
                raise ConfigError(where, value, "0 or 1 (a run trains on one device unless its sweep's "
                                  "`resources` ask for more; one array task per run)")
        elif key == "mem_gb":
            # Under 1 MB the request would round to --mem=0, which SLURM reads as the whole node.
            bad = (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                   or value * 1024 < 1)
            if value is not None and bad:
                raise ConfigError(where, value, "a number of GB >= 1/1024 (1 MB), or null for the cluster's "
                                  "default")
        elif key == "setup":
            value = [value] if isinstance(value, str) else value
            if value is None:
                value = []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(where, value, "a list of shell lines (e.g. 'module load cuda/12.4')")
            value = tuple(value)
        elif key == "sbatch":
            value = value or {}
            plain = isinstance(value, dict) and all(isinstance(v, (str, int, bool)) for v in value.values())
            if not plain:
                raise ConfigError(where, value, "a mapping of sbatch option → string, number or true")
        values[key] = value
    prof = replace(Profile(), source=source, **values)
    if prof.signal_delay_s >= prof.timeout_min * 60:
        raise ConfigError("profile.signal_delay_s", prof.signal_delay_s,
                          f"fewer seconds than timeout_min ({prof.timeout_min} min)")
    return prof


def find_profile(ref: str, sweep_path: Path | None = None) -> Path:
    """A profile path as given, relative to the sweep file, in ./slurm/profiles/, or a shipped one's name."""
    candidates = [Path(ref)]
    if sweep_path is not None:
        candidates.append(Path(sweep_path).parent / ref)
    if "/" not in ref:
        stem = ref if ref.endswith((".yaml", ".yml")) else f"{ref}.yaml"
        candidates += [p for p in (Path("slurm/profiles") / stem, shipped_file("profiles", ref)) if p is not None]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("profile", ref,
                      "a profile YAML file or one of: " + (", ".join(shipped_names("profiles")) or "(none found)"))


def load_profile(ref: str | Path | Profile | None, sweep_path: Path | None = None) -> Profile:
    """The profile named by ``--profile`` or the sweep; None gives the built-in defaults."""
    if isinstance(ref, Profile):
        return ref
    if ref is None:
        return Profile()
    path = find_profile(str(ref), sweep_path)
    return parse_profile(read_yaml(path, "profile"), name=path.stem, source=str(path))
