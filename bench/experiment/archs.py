"""The architectures a run can train, as facts that validating a run needs without building a network.

This table names every architecture; bench.models builds each one under the same name. Reading it
imports neither torch nor timm, so planning and checking a sweep stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["cifar", "imagenet"]


@dataclass(frozen=True)
class Arch:
    """What the benchmark knows about one architecture before it builds it.

    ``paper_name`` and ``paper_params`` are spelled as in the paper tables (bench/reference/*.csv,
    columns ``arch`` and ``params``) so that results can be joined with them. ``exact_params_m``
    is the reference network's count without the head, in millions, known for the CIFAR networks only.
    """

    family: Family
    paper_name: str
    paper_params: str
    feature_dim: int  # A: the size of the pooled feature vector the classifier sees
    exact_params_m: float | None = None
    # The network takes ``drop_rate``: in its blocks where the ISDA authors' CIFAR code gives the family a
    # rate (ResNet, SE-ResNet, WRN, DenseNet-BC), before the classifier in timm's ImageNet networks.
    dropout: bool = False
    min_size: int = 1  # the smallest image side its pooling leaves a feature map for


ARCHS: dict[str, Arch] = {
    "resnet32": Arch("cifar", "ResNet-32", "0.5M", 64, 0.466, dropout=True),
    "resnet110": Arch("cifar", "ResNet-110", "1.7M", 64, 1.730, dropout=True),
    "se_resnet110": Arch("cifar", "SE-ResNet-110", "1.7M", 64, 1.742, dropout=True),
    # Wide ResNets default to the paper's dropout of 0.3 (WideResNet's own default).
    "wrn16_8": Arch("cifar", "Wide-ResNet-16-8", "11.0M", 512, 10.956, dropout=True),
    "wrn28_10": Arch("cifar", "Wide-ResNet-28-10", "36.5M", 640, 36.473, dropout=True),
    "resnext29_8x64d": Arch("cifar", "ResNeXt-29 8x64d", "34.4M", 1024, 34.416),
    "densenet_bc_100_12": Arch("cifar", "DenseNet-BC-100-12", "0.8M", 342, 0.766, dropout=True),
    "shake_shake26_2x32d": Arch("cifar", "Shake-Shake (26 2x32d)", "3.0M", 128, 2.988),
    "shake_shake26_2x112d": Arch("cifar", "Shake-Shake (26 2x112d)", "36.4M", 448, 36.431),
    "resnet50": Arch("imagenet", "ResNet-50", "25.6M", 2048, dropout=True),
    "resnet101": Arch("imagenet", "ResNet-101", "44.6M", 2048, dropout=True),
    "resnet152": Arch("imagenet", "ResNet-152", "60.3M", 2048, dropout=True),
    "resnext50_32x4d": Arch("imagenet", "ResNeXt-50 32x4d", "25.0M", 2048, dropout=True),
    "resnext101_32x8d": Arch("imagenet", "ResNeXt-101 32x8d", "88.8M", 2048, dropout=True),
    "densenet121": Arch("imagenet", "DenseNet-BC-121", "8.0M", 1024, dropout=True, min_size=29),
    # Huang et al.'s DenseNet-264 (growth 32), which the paper calls DenseNet-BC-265: bench.models.imagenet.
    "densenet264": Arch("imagenet", "DenseNet-BC-265", "33.3M", 2688, dropout=True, min_size=29),
}
