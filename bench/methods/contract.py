"""The method contract, checked where a mistake is made: a loss's factory, its module and its forward.

``create_loss`` builds a run's loss and names the method and the contract when a plugin's factory
fails or returns something else than an ``nn.Module``. ``probe`` builds a method once on dummy sizes
and runs one forward and backward, before a command writes anything (``train``, ``plan``, ``launch``
call it for every plugin method of their runs). ``check_output`` is what the trainer applies to
forward's result at every step: ``(loss, logits)``, the loss a 0-d tensor (the batch's mean) and the
logits ``[N, num_classes]``. A broken contract is a ConfigError under ``method``: one line naming the
method, where it comes from, what it did and what the contract wants (docs/method.md, The method
contract).

torch is imported by the functions that use it, so that reading a sweep does not import it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from bench.common.errors import ConfigError
from bench.methods import plugins, registry

# Three sizes that differ, so that a result of the wrong shape (the features, the batch) shows.
PROBE_CLASSES, PROBE_FEATURES, PROBE_BATCH = 3, 5, 8
FORWARD = "forward(features, fc, labels, progress)"
WANTS = ("(loss, logits): loss a 0-d tensor, the batch's mean, that backpropagates to features and fc, and "
         "logits the plain fc(features) [N, num_classes]")
FACTORY = "factory(num_classes, feature_dim, params)"


def _origin(name: str) -> str:
    info = plugins.plugin_of(name)
    if info is None:
        return name
    where = f"{info.package} {info.version}" if info.package else (info.origin or info.module)
    return f"{name} ({where})"


def _refuse(name: str, what: str) -> ConfigError:
    return ConfigError("method", name, f"a method that keeps the method contract (docs/method.md): {_origin(name)} "
                       f"{what}")


def describe(value: Any) -> str:
    """A value as an error message names it: ``a tensor [8, 3]``, ``a 0-d tensor``, ``a tuple of 3``."""
    import torch

    if isinstance(value, torch.Tensor):
        return "a 0-d tensor" if value.ndim == 0 else f"a tensor [{', '.join(map(str, value.shape))}]"
    if isinstance(value, (tuple, list)):
        if len(value) <= 3:
            return f"a {type(value).__name__} ({', '.join(describe(v) for v in value)})"
        return f"a {type(value).__name__} of {len(value)}"
    if value is None:
        return "None"
    if inspect.isfunction(value) or inspect.ismethod(value):
        return f"the function {getattr(value, '__qualname__', value)!r}"
    return f"a {type(value).__name__}"


def _why_factory_failed(spec: registry.LossSpec, exc: BaseException) -> str:
    """A hint for the usual mistakes: a signature that does not take the three arguments, a key of
    ``params`` that is not one of the method's parameters."""
    try:
        inspect.signature(spec.factory).bind(1, 1, {})
    except TypeError:
        try:
            shown = str(inspect.signature(spec.factory))
        except (TypeError, ValueError):
            shown = "another signature"
        return f"; its signature is {shown}, and the contract calls {FACTORY}"
    except ValueError:
        pass
    if isinstance(exc, KeyError) and exc.args and exc.args[0] not in spec.params:
        return (f"; it reads params[{exc.args[0]!r}], which is not one of its parameters "
                f"({', '.join(spec.params) or 'none declared'})")
    return ""


def create_loss(name: str, num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    """The loss module of a run: its factory called with the run's parameter values."""
    import torch

    spec = registry.get_loss(name)
    if spec.builtin:  # ours: a failure is a bug to see whole, not a user's mistake
        return spec.factory(num_classes, feature_dim, dict(params))
    try:
        crit = spec.factory(num_classes, feature_dim, dict(params))
    except Exception as exc:  # noqa: BLE001 - the plugin's mistake: one line that says which
        raise _refuse(name, f"could not be built: its factory raised {plugins._one_line(exc)}"
                      f"{_why_factory_failed(spec, exc)}") from None
    if not isinstance(crit, torch.nn.Module):
        raise _refuse(name, f"could not be built: its factory returned {describe(crit)}, and the contract wants "
                      f"an nn.Module from {FACTORY}, whose forward computes the loss")
    return crit


def check_output(name: str, out: Any, batch: int, num_classes: int, feature_dim: int | None = None) -> Any:
    """``(loss, logits)`` of a loss's forward, or a ConfigError that says what it returned instead."""
    import torch

    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise _refuse(name, f"{FORWARD} returned {describe(out)}; the contract wants {WANTS}")
    loss, logits = out
    if loss.ndim != 0:
        if logits.ndim == 0:
            hint = "(logits, loss), the wrong way round"
        elif tuple(loss.shape) == (batch,):
            hint = f"{describe(loss)}, one loss per sample, as its loss: return their mean"
        else:
            hint = f"{describe(loss)} as its loss"
        raise _refuse(name, f"{FORWARD} returned {hint}; the contract wants {WANTS}")
    if tuple(logits.shape) != (batch, num_classes):
        hint = " (the features, not fc(features))" if feature_dim is not None and tuple(logits.shape) == (
            batch, feature_dim) else ""
        raise _refuse(name, f"{FORWARD} returned as logits {describe(logits)}{hint} for a batch of {batch} and "
                      f"{num_classes} classes; the contract wants {WANTS}")
    if not loss.is_floating_point():
        raise _refuse(name, f"{FORWARD} returned a loss of dtype {loss.dtype}; the contract wants {WANTS}")
    return loss, logits


def _check_state(name: str, crit: Any) -> None:
    """Tensors a loss keeps must be buffers or parameters: those move to the run's device, are
    checkpointed and resumed; a plain attribute is neither."""
    import torch

    for attr, value in vars(crit).items():
        if isinstance(value, torch.Tensor):
            raise _refuse(name, f"keeps the tensor self.{attr} as a plain attribute; state must live in buffers "
                          f"(self.register_buffer({attr!r}, …)) or parameters, which move to the run's device and are "
                          "checkpointed")


def _check_hooks(name: str, crit: Any) -> None:
    """The optional attributes the trainer reads (docs/method.md, The method contract)."""
    for attr in ("synchronised", "accepts_pad_to"):
        if hasattr(crit, attr) and not isinstance(getattr(crit, attr), bool):
            raise _refuse(name, f"has {attr} = {getattr(crit, attr)!r}; the contract wants True or False")
    strength = getattr(crit, "strength", None)
    if strength is not None:
        try:
            float(strength(0.5))
        except Exception as exc:  # noqa: BLE001 - the plugin's mistake
            raise _refuse(name, f"has a strength(progress) that did not give a number for progress 0.5 "
                          f"({plugins._one_line(exc)}); the contract wants the number it logs as lambda") from None


def probe(name: str, params: Mapping[str, Any], world_size: int = 1) -> None:
    """Build loss ``name`` on dummy sizes and run one forward and backward on random features, as a
    run would; every broken part of the contract is a ConfigError. Leaves torch's random state as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        crit = create_loss(name, PROBE_CLASSES, PROBE_FEATURES, params)
        _check_state(name, crit)
        _check_hooks(name, crit)
        if world_size > 1 and any(True for _ in crit.parameters()):
            raise _refuse(name, f"has trainable parameters, which a run of {world_size} processes refuses (DDP "
                          "averages the network's gradients only): keep its state in buffers")
        fc = torch.nn.Linear(PROBE_FEATURES, PROBE_CLASSES)
        features = torch.randn(PROBE_BATCH, PROBE_FEATURES, requires_grad=True)
        labels = torch.arange(PROBE_BATCH) % PROBE_CLASSES
        extra = {"pad_to": None} if getattr(crit, "accepts_pad_to", False) else {}
        try:
            out = crit(features, fc, labels, 0.0, **extra)
        except Exception as exc:  # noqa: BLE001 - the plugin's mistake
            raise _refuse(name, f"failed in {FORWARD} on a batch of {PROBE_BATCH} features of size {PROBE_FEATURES} "
                          f"and {PROBE_CLASSES} classes: {plugins._one_line(exc)}") from None
        loss, _ = check_output(name, out, PROBE_BATCH, PROBE_CLASSES, PROBE_FEATURES)
        if not loss.requires_grad:
            raise _refuse(name, f"{FORWARD} returned a loss without a gradient (computed under no_grad, detached, or "
                          f"not from features and fc); the contract wants {WANTS}")
        _check_state(name, crit)


def probe_runs(runs: Iterable[tuple[str, Mapping[str, Any], int]]) -> None:
    """``probe`` each plugin loss among ``runs`` (loss name, parameter values, processes) once per
    distinct setting; the built-in losses are the suite's own and are tested there."""
    seen = set()
    for name, params, world in runs:
        if registry.get_loss(name).builtin:
            continue
        key = (name, tuple(sorted(params.items())), world > 1)
        if key not in seen:
            seen.add(key)
            probe(name, params, world)
