"""Methods: a method is one registered loss plus at most one extra augmentation, and ``+dropout``.

Names are written ``loss+augmentation`` (``isda+autoaugment``); a bare augmentation means
cross-entropy with it (``cutout``), and a bare loss means the standard augmentation (``isda``).
``+dropout`` (``isda+dropout``, ``ce+dropout``, ``isda+cutout+dropout``) gives the network the
dropout rate ``DROPOUT_RATE`` where its run has none (``drop_rate`` 0), for the comparison in which
the paper gives every network without dropout a rate of 0.3; the network applies it where its
authors put it (bench.models), and bench.experiment.resolve sets it. A run whose network has dropout
already (Wide-ResNets' 0.3) keeps its rate, so there the method trains as the one without ``+dropout``.
Losses come from :func:`register_loss` (bench.methods.registry): the built-in ones
(bench.methods.builtin) and those of plugins (bench.methods.plugins).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common.errors import ConfigError
from bench.methods.registry import (
    LossSpec,
    Param,
    RegistrationError,
    get_loss,
    loss_names,
    param,
    param_names,
    register_loss,
    reserve,
)

__all__ = ["AUGMENTS", "DROPOUT", "DROPOUT_RATE", "LossSpec", "Method", "Param", "RegistrationError", "create_loss",
           "get_loss", "loss_names", "method_names", "param", "param_names", "parse_method", "register_loss"]

# "autoaugment" is the paper's "AA": the authors' CIFAR-10 AutoAugment policy plus Cutout(16) (on
# ImageNet torchvision's ImageNet policy without Cutout, bench.data.batches); "tv_autoaugment" is
# torchvision's CIFAR-10 policy plus Cutout(16), for comparison.
AUGMENTS = ("standard", "cutout", "autoaugment", "randaugment", "tv_autoaugment")
DROPOUT = "dropout"
# The supplement's rate for the networks that have no dropout of their own (Srivastava et al.).
DROPOUT_RATE = 0.3
reserve(*AUGMENTS, DROPOUT)


@dataclass(frozen=True)
class Method:
    loss: str
    augment: str
    dropout: bool = False  # +dropout: the network's dropout at DROPOUT_RATE where the run has none

    @property
    def name(self) -> str:
        if self.augment == "standard":
            base = self.loss
        else:
            base = self.augment if self.loss == "ce" else f"{self.loss}+{self.augment}"
        return f"{base}+{DROPOUT}" if self.dropout else base

    @property
    def params(self) -> tuple[str, ...]:
        """The run fields this method's loss takes."""
        return tuple(get_loss(self.loss).params)

    @property
    def cutout(self) -> bool:
        return self.augment in ("cutout", "autoaugment", "tv_autoaugment")


def method_names() -> tuple[str, ...]:
    """Every method name without +dropout: each loss, each augmentation, each loss other than ce with each."""
    losses = loss_names()
    extra = [a for a in AUGMENTS if a != "standard"]
    return (*losses, *extra, *(f"{l}+{a}" for l in losses if l != "ce" for a in extra))


def _allowed() -> str:
    extra = [a for a in AUGMENTS if a != "standard"]
    return (f"LOSS, AUGMENTATION or LOSS+AUGMENTATION, each optionally +{DROPOUT}; losses: "
            f"{', '.join(loss_names())}; augmentations: {', '.join(extra)}{plugins.broken_note()}")


def parse_method(name: object) -> Method:
    """``"isda+cutout"`` → Method("isda", "cutout"); unknown names raise ConfigError."""
    if not isinstance(name, str) or not name:
        raise ConfigError("method", name, _allowed())
    loss, augment, dropout = "ce", "standard", False
    seen_loss = seen_aug = False
    losses = loss_names()
    for part in name.strip().lower().split("+"):
        if part in losses and not seen_loss:
            loss, seen_loss = part, True
        elif part in AUGMENTS and part != "standard" and not seen_aug:
            augment, seen_aug = part, True
        elif part == DROPOUT and not dropout:
            dropout = True
        else:
            raise ConfigError("method", name, _allowed())
    return Method(loss, augment, dropout)


# builtin registers the built-in losses; plugins loads installed ones at the first look-up of a loss;
# contract builds a run's loss and checks what a plugin's does.
from bench.methods import builtin, plugins  # noqa: E402,F401
from bench.methods.contract import create_loss  # noqa: E402
