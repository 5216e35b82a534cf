"""The loss registry: every loss a run can train with, built-in or from a plugin, and its parameters.

A loss is registered once under a name with a factory and the run fields it takes, by a call or,
as timm users write it, as a decorator of the factory::

    from torch import nn
    import torch.nn.functional as F
    from bench.methods import Param, register_loss

    @register_loss("label_smoothing", params={"smoothing": Param(0.1, min=0.0, below=1.0)},
                   display="Label smoothing")
    class LabelSmoothing(nn.Module):
        def __init__(self, num_classes, feature_dim, params):
            super().__init__()
            self.eps = params["smoothing"]

        def forward(self, features, fc, labels, progress):
            logits = fc(features)
            return F.cross_entropy(logits.float(), labels, label_smoothing=self.eps), logits

``factory(num_classes, feature_dim, params)`` returns an ``nn.Module`` whose
``forward(features, fc, labels, progress)`` returns ``(loss, logits)``: the loss a 0-d tensor, the
batch's mean, and ``logits`` [N, num_classes] the plain ones, from which the run measures its error.
docs/method.md (The method contract) says all of it; bench.methods.contract checks it before a run
starts and at every step.

Each parameter becomes a run field: ``--set smoothing=0.2``, a sweep axis that multiplies only the
methods that take it, validated like the built-in fields, recorded in config.yaml and part of the
run id. Declare it with its default, or with a :class:`Param` for bounds and choices.

Registration refuses, with a :class:`RegistrationError`, a name that is taken (a built-in method, an
augmentation or another plugin's loss), a parameter name that is a run field or a result.json key,
or that another loss declares with another meaning, and a default that its own Param refuses.
"""

from __future__ import annotations

import functools
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from bench.common.errors import ConfigError


class RegistrationError(ValueError, TypeError):
    """A loss or a parameter that cannot be registered as declared: a mistake of the plugin's author."""


NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
KINDS = ("float", "int", "bool", "str")


@dataclass(frozen=True)
class Param:
    """A loss parameter: its default and what values it takes.

    ``default``: the value, or a function ``(dataset, arch) -> value`` where it follows the recipe.
    ``kind``: float, int, bool or str (from the default when it is a value). Bounds are inclusive
    (``min``, ``max``) or strict (``above``, ``below``). ``id_default``: a parameter added to a loss
    after its runs were first named; at its default it is left out of the run id, so those runs
    keep their names. ``label``: how a run's readable name (its slug) shows the value: None shows
    ``name=value``, "" nothing, any other text is put before the value (``l0.5``).
    """

    default: Any
    kind: str | None = None
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    help: str = ""
    id_default: bool = False
    label: str | None = None

    def __post_init__(self) -> None:
        kind = self.kind
        if kind is None:
            if callable(self.default):
                raise RegistrationError("a Param whose default is a function needs kind=")
            kind = _kind_of(self.default)
            object.__setattr__(self, "kind", kind)
        if kind not in KINDS:
            raise RegistrationError(f"Param kind must be one of {KINDS}, got {kind!r}")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if not callable(self.default):
            # A default the parameter itself refuses would make every run of the loss invalid;
            # stored as check() returns it, so that a default 1 and a given 1.0 name one experiment.
            try:
                object.__setattr__(self, "default", self.check("default", self.default))
            except ConfigError as exc:
                raise RegistrationError(f"Param default {self.default!r} is not {self.allowed()}") from exc

    def default_for(self, dataset: str, arch: str) -> Any:
        return self.default(dataset, arch) if callable(self.default) else self.default

    def allowed(self) -> str:
        """What the parameter takes, as an error message says it."""
        if self.choices is not None:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        what = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}[self.kind or ""]
        bounds = [f">= {_g(self.min)}" if self.min is not None else "", f"> {_g(self.above)}" if self.above is not None
                  else "", f"<= {_g(self.max)}" if self.max is not None else "",
                  f"< {_g(self.below)}" if self.below is not None else ""]
        bounds = [b for b in bounds if b]
        return f"{what} {' and '.join(bounds)}" if bounds else what

    def check(self, key: str, value: Any) -> Any:
        """``value`` as this parameter holds it; a ConfigError naming ``key`` if it is not allowed."""
        if self.kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            value = float(value) if ok else value
        elif self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.kind in ("float", "int"):
            ok = ((self.min is None or value >= self.min) and (self.max is None or value <= self.max)
                  and (self.above is None or value > self.above) and (self.below is None or value < self.below))
        if not ok:
            raise ConfigError(key, value, self.allowed())
        return value


def _g(x: float) -> str:
    return f"{x:g}"


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    raise RegistrationError(f"a parameter's default must be a number, a bool or a string, got {value!r}")


Factory = Callable[[int, int, Mapping[str, Any]], Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class LossSpec:
    name: str
    factory: Factory
    params: dict[str, Param] = field(default_factory=dict)
    module: str = ""  # where the factory is defined: bench.* for built-ins, else the plugin's module
    help: str = ""
    display: str = ""  # the method's name in reports; empty: the report's own, else the loss name

    @property
    def builtin(self) -> bool:
        return self.module == "bench" or self.module.startswith("bench.")


_LOSSES: dict[str, LossSpec] = {}
_PARAMS: dict[str, Param] = {}  # every parameter of every registered loss; one name, one meaning
# Names that are not losses: the augmentations and modifiers a method name may add to a loss.
_RESERVED: set[str] = set()
# Run fields and result keys a parameter may not shadow; bench.experiment.runconfig fills it (it imports this module).
RESERVED_PARAM_NAMES: set[str] = set()
# Loads the plugins installed under the entry-point group, once, before the first lookup
# (bench.methods.plugins sets it; a function, so that this module imports nothing of the rest).
_autoload: Callable[[], None] | None = None


def _same_factory(a: Any, b: Any) -> bool:
    """The same factory, or the same one defined again (a plugin module imported a second time).

    A class or a function defined at a module's top level is known by its module and name. Those
    names do not tell two lambdas, two functions made by one function (``<locals>``) or two
    ``functools.partial``s apart: such factories are the same only where their code, defaults,
    closures and bound arguments are."""
    if a is b:
        return True
    if isinstance(a, functools.partial) or isinstance(b, functools.partial):
        return (isinstance(a, functools.partial) and isinstance(b, functools.partial) and _same_factory(a.func, b.func)
                and _equal(a.args, b.args) and _equal(a.keywords, b.keywords))
    module, qualname = getattr(a, "__module__", None), getattr(a, "__qualname__", None)
    if not isinstance(qualname, str) or (module, qualname) != (getattr(b, "__module__", None),
                                                               getattr(b, "__qualname__", None)):
        return False  # a callable object is only itself
    if "<" not in qualname:
        return True
    if not (isinstance(a, types.FunctionType) and isinstance(b, types.FunctionType)):
        return False
    ca, cb = a.__code__, b.__code__
    cells = [tuple(c.cell_contents for c in f.__closure__ or ()) for f in (a, b)]
    return ((ca.co_filename, ca.co_firstlineno, ca.co_code) == (cb.co_filename, cb.co_firstlineno, cb.co_code)
            and _equal(ca.co_consts, cb.co_consts) and _equal(a.__defaults__, b.__defaults__)
            and _equal(a.__kwdefaults__, b.__kwdefaults__) and _equal(cells[0], cells[1]))


def _equal(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except Exception:  # noqa: BLE001 - values that cannot be compared (tensors): not the same
        return False


@overload
def register_loss(name: str, factory: None = None, params: Mapping[str, Any] | None = None, *,
                  help: str = "", display: str = "") -> Callable[[F], F]: ...


@overload
def register_loss(name: str, factory: Factory, params: Mapping[str, Any] | None = None, *,
                  help: str = "", display: str = "") -> LossSpec: ...


def register_loss(name: str, factory: Factory | None = None, params: Mapping[str, Any] | None = None, *,
                  help: str = "", display: str = "") -> LossSpec | Callable[[F], F]:
    """Make ``name`` a method: ``isda-bench train --method name``, ``name+cutout``, sweep grids.

    ``params`` maps each run field the loss takes to its default or to a :class:`Param`; ``help``
    says what the method is (default: the first line of the factory's docstring) and ``display``
    how reports name it. Without ``factory`` it returns a decorator that registers the class or
    function it decorates and returns it unchanged. Registering the same factory again under its
    name is a no-op (a plugin imported twice); another loss under a taken name, or a parameter name
    that means something else already, is a RegistrationError.
    """
    if factory is None:
        def decorate(target: F) -> F:
            register_loss(name, target, params, help=help, display=display)
            return target

        return decorate
    if not isinstance(name, str) or not NAME_RE.match(name) or name in _RESERVED:
        raise RegistrationError(f"loss name {name!r}: lower-case letters, digits and '_', starting with a "
                                f"letter, and not one of {', '.join(sorted(_RESERVED))}")
    if not callable(factory):
        raise RegistrationError(f"loss {name!r}: the factory must be callable (a class or a function), "
                                f"got {factory!r}")
    if params is not None and not isinstance(params, Mapping):
        raise RegistrationError(f"loss {name!r}: params must map parameter names to defaults or Params")
    for what, text in (("help", help), ("display", display)):
        if not isinstance(text, str) or not text.isprintable():
            raise RegistrationError(f"loss {name!r}: {what} must be a line of text, got {text!r}")
    if not help and isinstance(getattr(factory, "__doc__", None), str) and not isinstance(factory, functools.partial):
        help = (factory.__doc__ or "").strip().split("\n")[0]
    declared: dict[str, Param] = {}
    for key, value in (params or {}).items():
        if not isinstance(key, str) or not NAME_RE.match(key):
            raise RegistrationError(f"loss {name!r}: parameter name {key!r} must be lower-case letters, "
                                    "digits and '_', starting with a letter")
        try:
            declared[key] = value if isinstance(value, Param) else Param(value)
        except RegistrationError as exc:
            raise RegistrationError(f"loss {name!r}: parameter {key!r}: {exc}") from None
    for key, param in declared.items():
        if key in RESERVED_PARAM_NAMES:
            raise RegistrationError(f"loss {name!r}: parameter {key!r} is a run field or a result.json key "
                                    "already; choose another name")
        other = _PARAMS.get(key)
        if other is not None and other != param:
            owner = next(s.name for s in _LOSSES.values() if key in s.params)
            default = "set by the recipe" if callable(other.default) else repr(other.default)
            raise RegistrationError(f"loss {name!r}: parameter {key!r} means something else already (loss "
                                    f"{owner!r} declares it: default {default}, {other.allowed()}); "
                                    "choose another name")
    module = getattr(getattr(factory, "func", factory), "__module__", "") or ""  # a partial's: its function's
    spec = LossSpec(name, factory, declared, module, help, display)
    old = _LOSSES.get(name)
    if old is not None:
        if _same_factory(old.factory, factory) and old.params == declared and old.display == display:
            _LOSSES[name] = spec
            return spec
        where = "a built-in method" if old.builtin else f"registered by {old.module}"
        raise RegistrationError(f"loss {name!r} is taken ({where})")
    _LOSSES[name] = spec
    _PARAMS.update(declared)
    return spec


def reserve(*names: str) -> None:
    """Names a loss may not take (augmentations, modifiers)."""
    _RESERVED.update(names)


def reserve_param_names(names: Iterable[str]) -> None:
    """Names a parameter may not take (run fields, result keys): refused from now on at registration."""
    RESERVED_PARAM_NAMES.update(names)


def shadowing_params() -> list[tuple[str, str]]:
    """(parameter, module of its loss) for parameters registered before their name was reserved."""
    return [(key, spec.module) for spec in _LOSSES.values() for key in spec.params if key in RESERVED_PARAM_NAMES]


def _loaded() -> None:
    if _autoload is not None:
        _autoload()


def loss_names() -> tuple[str, ...]:
    _loaded()
    return tuple(_LOSSES)


def get_loss(name: str) -> LossSpec:
    _loaded()
    return _LOSSES[name]


def param_names() -> tuple[str, ...]:
    """Every parameter of every registered loss, in registration order."""
    _loaded()
    return tuple(_PARAMS)


def param(name: str) -> Param:
    _loaded()
    return _PARAMS[name]
