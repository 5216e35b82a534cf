"""Methods: a method is one registered loss plus at most one extra augmentation.

Names are written ``loss+augmentation`` (``isda+autoaugment``); a bare augmentation means
cross-entropy with it (``cutout``), and a bare loss means the standard augmentation (``isda``).
Losses come from :func:`register_loss` (bench.methods.registry): the built-in ones
(bench.methods.builtin) and those of plugins.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import ConfigError
from bench.methods.registry import (
    LossSpec,
    Param,
    create_loss,
    get_loss,
    loss_names,
    param,
    param_names,
    register_loss,
    reserve,
)

__all__ = ["AUGMENTS", "LossSpec", "Method", "Param", "create_loss", "get_loss", "loss_names", "method_names",
           "param", "param_names", "parse_method", "register_loss"]

# "autoaugment" is the paper's "AA": the authors' CIFAR-10 AutoAugment policy plus Cutout(16) (on
# ImageNet torchvision's ImageNet policy, bench.data._policy); "tv_autoaugment" is torchvision's
# CIFAR-10 policy plus Cutout(16), for comparison.
AUGMENTS = ("standard", "cutout", "autoaugment", "randaugment", "tv_autoaugment")
reserve(*AUGMENTS)


@dataclass(frozen=True)
class Method:
    loss: str
    augment: str

    @property
    def name(self) -> str:
        if self.augment == "standard":
            return self.loss
        return self.augment if self.loss == "ce" else f"{self.loss}+{self.augment}"

    @property
    def params(self) -> tuple[str, ...]:
        """The run fields this method's loss takes."""
        return tuple(get_loss(self.loss).params)

    @property
    def cutout(self) -> bool:
        return self.augment in ("cutout", "autoaugment", "tv_autoaugment")


def method_names() -> tuple[str, ...]:
    """Every method name: each loss, each augmentation, and each loss other than ce with each."""
    losses = loss_names()
    extra = [a for a in AUGMENTS if a != "standard"]
    return (*losses, *extra, *(f"{l}+{a}" for l in losses if l != "ce" for a in extra))


def parse_method(name: object) -> Method:
    """``"isda+cutout"`` → Method("isda", "cutout"); unknown names raise ConfigError."""
    if not isinstance(name, str) or not name:
        raise ConfigError("method", name, method_names())
    loss, augment = "ce", "standard"
    seen_loss = seen_aug = False
    losses = loss_names()
    for part in name.strip().lower().split("+"):
        if part in losses and not seen_loss:
            loss, seen_loss = part, True
        elif part in AUGMENTS and part != "standard" and not seen_aug:
            augment, seen_aug = part, True
        else:
            raise ConfigError("method", name, method_names())
    return Method(loss, augment)


from bench.methods import builtin  # noqa: E402,F401 - registers ce, focal, isda and explicit
