"""Method registry: a method is one loss plus at most one extra augmentation.

Names are written ``loss+augmentation`` (``isda+autoaugment``); a bare augmentation means
cross-entropy with it (``cutout``), and a bare loss means the standard augmentation (``isda``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import ConfigError

LOSSES = ("ce", "isda", "focal")
# "autoaugment" is the paper's "AA": the CIFAR-10 AutoAugment policy plus Cutout(16) (on ImageNet
# the ImageNet policy, bench.data._policy).
AUGMENTS = ("standard", "cutout", "autoaugment", "randaugment")
# Which sweep/config parameters each loss takes; any other loss leaves them unset.
LOSS_PARAMS = {"ce": (), "isda": ("lambda0", "cov_mode", "isda_sync"), "focal": ("focal_gamma",)}


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
        return LOSS_PARAMS[self.loss]

    @property
    def cutout(self) -> bool:
        return self.augment in ("cutout", "autoaugment")


def _allowed() -> list[str]:
    names = list(LOSSES) + [a for a in AUGMENTS if a != "standard"]
    names += [f"{l}+{a}" for l in LOSSES if l != "ce" for a in AUGMENTS if a != "standard"]
    return names


METHODS: tuple[str, ...] = tuple(_allowed())


def parse_method(name: object) -> Method:
    """``"isda+cutout"`` → Method("isda", "cutout"); unknown names raise ConfigError."""
    if not isinstance(name, str) or not name:
        raise ConfigError("method", name, METHODS)
    loss, augment = "ce", "standard"
    seen_loss = seen_aug = False
    for part in name.strip().lower().split("+"):
        if part in LOSSES and not seen_loss:
            loss, seen_loss = part, True
        elif part in AUGMENTS and part != "standard" and not seen_aug:
            augment, seen_aug = part, True
        else:
            raise ConfigError("method", name, METHODS)
    return Method(loss, augment)
