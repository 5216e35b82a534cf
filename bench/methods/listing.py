"""``isda-bench methods``: every method a run can name, its parameters and where it comes from, as text.

A loss is listed with its origin (built in; a plugin installed by a package, with its version; a
plugin file), the name reports give it, what it is, and each parameter with its default, the values
it takes and its help; then the augmentations a method may add, and the installed plugins that did
not load.
"""

from __future__ import annotations

from bench.methods import AUGMENTS, DROPOUT, DROPOUT_RATE, get_loss, loss_names, plugins
from bench.methods.registry import LossSpec, Param


def origin(spec: LossSpec) -> str:
    """Where a loss comes from, in words."""
    if spec.builtin:
        return "built-in"
    info = plugins.plugin_of(spec.name)
    if info is None:
        return f"registered by {spec.module}"
    if info.package:
        return f"package {info.package} {info.version or ''}".rstrip() + f" (module {info.module})"
    return f"file {info.origin}" if info.origin else f"module {info.module}"


def _default(param: Param) -> str:
    if callable(param.default):
        return "set by the recipe"
    return repr(param.default) if isinstance(param.default, str) else str(param.default)


def describe(name: str) -> list[str]:
    """The lines that list loss ``name``."""
    spec = get_loss(name)
    head = f"{name}  [{origin(spec)}]"
    if spec.display:
        head += f"  shown as {spec.display!r}"
    lines = [head]
    if spec.help:
        lines.append(f"    {spec.help}")
    for key, param in spec.params.items():
        line = f"    --set {key}=…  default {_default(param)}; {param.allowed()}"
        lines.append(line + (f"; {param.help}" if param.help else ""))
    return lines


def listing() -> str:
    """Every registered loss, then how a method name combines them."""
    lines = ["Losses (a method is LOSS, AUGMENTATION or LOSS+AUGMENTATION, each optionally "
             f"+{DROPOUT}):", ""]
    for name in loss_names():
        lines += describe(name)
    extra = [a for a in AUGMENTS if a != "standard"]
    lines += ["", f"Augmentations: {', '.join(extra)} (alone: cross-entropy with it; without one: the "
              "standard crop and flip).",
              f"+{DROPOUT}: the network's own dropout, inside its blocks where the authors put it, at rate "
              f"{DROPOUT_RATE} where the run sets none (networks without dropout refuse it)."]
    if plugins._BROKEN:
        lines += ["", "Installed plugins that did not load:"]
        lines += [f"  {name}: {reason}" for name, reason in plugins._BROKEN.items()]
    return "\n".join(lines)
