"""The built-in losses, registered through the same API as a plugin's (bench.methods.registry).

Factories import torch when called, so that reading a sweep does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.common.bounds import BOUNDS
from bench.experiment.recipes import recipe_for
from bench.methods.registry import Param, register_loss


def _ce(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.losses import CrossEntropy

    return CrossEntropy()


def _focal(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.losses import FocalLoss

    return FocalLoss(params["focal_gamma"], params["focal_alpha"])


def _isda(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.isda import ISDAMethod

    return ISDAMethod(num_classes, feature_dim, lambda0=params["lambda0"], mode=params["cov_mode"],
                      sync=params["isda_sync"], schedule=params["lambda_schedule"])


register_loss("ce", _ce, help="cross-entropy")
# The papers' Focal-loss baseline: α = 0.5 and γ = 1 for all four CIFAR experiments (NeurIPS supplement §B).
register_loss("focal", _focal, {"focal_gamma": Param(1.0, min=0.0, label="g", help="focusing parameter γ"),
                                "focal_alpha": Param(0.5, min=0.0, max=1.0, label="a", help="weight α of the loss")},
              help="Focal loss (Lin et al. 2017)")
# Shared by every loss built on the class statistics (a parameter name has one meaning).
# The recipe's λ0 and covariance: 0.5 and full on CIFAR, 7.5 (ResNet-101: 5, DenseNets: 1) and
# diagonal on ImageNet.
LAMBDA0 = Param(lambda dataset, arch: recipe_for(dataset, arch).lambda0, kind="float", min=0.0, label="l",
                help="ISDA strength λ0; λ = λ0·epoch/epochs")
# identity and shared are the TPAMI ablation's: Σ = I, and one covariance of all features whatever the class.
COV_MODE = Param(lambda dataset, arch: recipe_for(dataset, arch).cov_mode, kind="str",
                 choices=("full", "diagonal", "identity", "shared"), label="",
                 help="covariance: per class full A×A or its diagonal; identity (Σ = I); shared (one for all classes)")
# Runs named before it existed had the papers' linear schedule.
LAMBDA_SCHEDULE = Param("linear", choices=("linear", "constant"), id_default=True, label="",
                        help="λ = λ0·epoch/epochs (linear), or λ0 from the first epoch (constant)")
# How the statistics follow a multi-process run (bench.methods.covariance). It changes results under DDP, so it is
# part of the experiment; with one process both are the same, and runs named before it existed
# computed "global".
ISDA_SYNC = Param("global", choices=("global", "local"), id_default=True, label="",
                  help="multi-process runs: merge every rank's batch (global) or the rank's own (local)")

ISDA_PARAMS = {"lambda0": LAMBDA0, "cov_mode": COV_MODE, "isda_sync": ISDA_SYNC, "lambda_schedule": LAMBDA_SCHEDULE}
register_loss("isda", _isda, ISDA_PARAMS,
              help="implicit semantic data augmentation")


def _explicit(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.explicit import ExplicitSemanticAugmentation

    return ExplicitSemanticAugmentation(num_classes, feature_dim, lambda0=params["lambda0"],
                                        samples=params["explicit_samples"], mode=params["cov_mode"],
                                        sync=params["isda_sync"], schedule=params["lambda_schedule"])


# The same statistics, λ and schedule as ISDA, under the same names; M feature draws per sample.
register_loss("explicit", _explicit, {**ISDA_PARAMS, "explicit_samples": Param(1, min=1, label="M",
                                                                               help="feature draws M per sample")},
              help="explicit semantic augmentation: M draws from N(a, λΣ_y) per sample, the loss ISDA bounds")


# The regularisers of the paper's comparison (bench.methods.baselines), with the settings its supplement
# states (docs/method.md, The other baselines) or, where it states none, those
# of the method's own authors.
def _large_margin(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import LargeMarginSoftmax

    return LargeMarginSoftmax(params["lsoftmax_margin"])


def _disturblabel(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import DisturbLabel

    return DisturbLabel(num_classes, params["disturb_rate"])


def _center(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import CenterLoss

    return CenterLoss(num_classes, feature_dim, params["center_weight"], params["center_lr"])


def _lq(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import LqLoss

    return LqLoss(params["lq_q"])


def _disturb_rate(dataset: str, arch: str) -> float:
    # Supplement: 0.1 for ResNet-110 on CIFAR-100, 0.05 for the other three settings (and elsewhere).
    return 0.1 if (dataset, arch) == ("cifar100", "resnet110") else 0.05


# m = 2: the authors' CIFAR-10 configurations (wy1iu/LargeMargin_Softmax_Loss, myexamples/cifar10
# and cifar10+: type DOUBLE), with their λ schedule, base 1000, power 45, γ 2e-5 (bench.methods.baselines).
register_loss("large_margin", _large_margin,
              {"lsoftmax_margin": Param(2, min=BOUNDS["lsoftmax_margin"].min, max=BOUNDS["lsoftmax_margin"].max,
                                         label="m", help="L-Softmax angular margin m (an integer)")},
              help="Large-Margin softmax, L-Softmax (Liu et al. 2016)")
register_loss("disturblabel", _disturblabel,
              {"disturb_rate": Param(_disturb_rate, kind="float", min=0.0, max=1.0, label="a",
                                     help="rate α at which a training label is replaced by a uniform one")},
              help="DisturbLabel (Xie et al. 2016)")
# Centre rate α 0.5: the supplement's "learning rate" of the centres (and Wen et al.'s α); weight
# λ 0.003: Wen et al.'s setting for their face models.
register_loss("center", _center,
              {"center_weight": Param(0.003, min=0.0, label="w", help="weight λ of the Center loss term"),
               "center_lr": Param(0.5, min=0.0, max=1.0, label="r", help="rate α at which the class centres move")},
              help="softmax + Center loss (Wen et al. 2016)")
register_loss("lq", _lq, {"lq_q": Param(0.4, above=0.0, max=1.0, label="q", help="exponent q of (1 − p_y^q) / q")},
              help="generalised cross-entropy, Lq loss (Zhang & Sabuncu 2018)")
