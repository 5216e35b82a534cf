"""The built-in losses, registered through the same API as a plugin's (bench.methods.registry).

Factories import torch when called, so that reading a sweep does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.common.bounds import BOUNDS
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
# ISDA's λ0 and covariance in the papers' settings (docs/method.md, The strength schedule): 0.5 and
# full on CIFAR (and every small dataset), on ImageNet 7.5 (ResNet-101: 5, DenseNets: 1) and
# diagonal, in the journal's recipe and the conference's alike. The method table owns them, so
# that the run description (bench.experiment) reads them from here and not the other way round.
IMAGENET_LAMBDA0 = {"resnet101": 5.0, "densenet121": 1.0, "densenet264": 1.0}


def recipe_lambda0(dataset: str, arch: str) -> float:
    return IMAGENET_LAMBDA0.get(arch, 7.5) if dataset == "imagenet" else 0.5


def recipe_cov_mode(dataset: str, arch: str) -> str:
    return "diagonal" if dataset == "imagenet" else "full"


# Shared by every loss built on the class statistics (a parameter name has one meaning).
# The recipe's λ0 and covariance: 0.5 and full on CIFAR, 7.5 (ResNet-101: 5, DenseNets: 1) and
# diagonal on ImageNet.
LAMBDA0 = Param(recipe_lambda0, kind="float", min=0.0, label="l", help="ISDA strength λ0; λ = λ0·epoch/epochs")
# identity, shared and pooled are the TPAMI ablation's: Σ = I, and the two readings of its "single
# covariance matrix", the covariance of all features whatever the class (shared, the shipped ablation's)
# and the pooled within-class one (pooled); docs/method.md says why.
COV_MODE = Param(recipe_cov_mode, kind="str",
                 choices=("full", "diagonal", "identity", "shared", "pooled"), label="",
                 help="covariance: per class full A×A or its diagonal; identity (Σ = I); one for all classes: of all "
                      "features (shared) or pooled within-class (pooled)")
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

    return LargeMarginSoftmax(params["lsoftmax_margin"], gamma=params["lsoftmax_gamma"])


def _disturblabel(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import DisturbLabel

    return DisturbLabel(num_classes, params["disturb_rate"])


def _center(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import CenterLoss

    return CenterLoss(num_classes, feature_dim, params["center_weight"], params["center_lr"],
                      follows_lr=params["center_lr_schedule"] == "run")


def _lq(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.methods.baselines import LqLoss

    return LqLoss(params["lq_q"])


def _disturb_rate(dataset: str, arch: str) -> float:
    # Supplement: 0.1 for ResNet-110 on CIFAR-100, 0.05 for the other three settings (and elsewhere).
    return 0.1 if (dataset, arch) == ("cifar100", "resnet110") else 0.05


# m = 2: the authors' CIFAR-10 configurations (wy1iu/LargeMargin_Softmax_Loss, myexamples/cifar10
# and cifar10+: type DOUBLE), with their λ schedule, base 1000 and power 45 (bench.methods.baselines).
# γ 1e-5: their cifar10+ example, the one trained with crops and flips as every ISDA run is
# (myexamples/cifar10+/model/cifar_train_test.prototxt, line 877); cifar10, without augmentation, has 2e-5.
register_loss("large_margin", _large_margin,
              {"lsoftmax_margin": Param(2, min=BOUNDS["lsoftmax_margin"].min, max=BOUNDS["lsoftmax_margin"].max,
                                         label="m", help="L-Softmax angular margin m (an integer)"),
               "lsoftmax_gamma": Param(1e-5, above=0.0, label="g",
                                       help="γ of the margin's phase-in λ = 1000·(1 + γ·step)^-45")},
              help="Large-Margin softmax, L-Softmax (Liu et al. 2016)")
register_loss("disturblabel", _disturblabel,
              {"disturb_rate": Param(_disturb_rate, kind="float", min=0.0, max=1.0, label="a",
                                     help="rate α at which a training label is replaced by a uniform one")},
              help="DisturbLabel (Xie et al. 2016)")
# Centre rate α 0.5: the supplement's "initial learning rate" of the centres (and Wen et al.'s α),
# following the run's learning-rate schedule as the centres do in Wen et al.'s code, whose solver updates
# them with the network's rate (ydwen/caffe-face: face_solver.prototxt, multistep; the CenterLoss layer's
# lr_mult 1); weight λ 0.003: Wen et al.'s setting for their face models.
register_loss("center", _center,
              {"center_weight": Param(0.003, min=0.0, label="w", help="weight λ of the Center loss term"),
               "center_lr": Param(0.5, min=0.0, max=1.0, label="r",
                                  help="initial rate α at which the class centres move"),
               "center_lr_schedule": Param("run", choices=("run", "constant"), label="",
                                           help="α follows the run's learning-rate schedule (run) or stays α "
                                                "(constant)")},
              help="softmax + Center loss (Wen et al. 2016)")
register_loss("lq", _lq, {"lq_q": Param(0.4, above=0.0, max=1.0, label="q", help="exponent q of (1 − p_y^q) / q")},
              help="generalised cross-entropy, Lq loss (Zhang & Sabuncu 2018)")
