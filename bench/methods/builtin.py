"""The built-in losses, registered through the same API as a plugin's (bench.methods.registry).

Factories import torch when called, so that reading a sweep does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.methods.registry import Param, register_loss
from bench.recipes import recipe_for


def _ce(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.losses import CrossEntropy

    return CrossEntropy()


def _focal(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.losses import FocalLoss

    return FocalLoss(params["focal_gamma"], params["focal_alpha"])


def _isda(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.isda import ISDAMethod

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
# How the statistics follow a multi-process run (bench.isda). It changes results under DDP, so it is
# part of the experiment; with one process both are the same, and runs named before it existed
# computed "global".
ISDA_SYNC = Param("global", choices=("global", "local"), id_default=True, label="",
                  help="multi-process runs: merge every rank's batch (global) or the rank's own (local)")

ISDA_PARAMS = {"lambda0": LAMBDA0, "cov_mode": COV_MODE, "isda_sync": ISDA_SYNC, "lambda_schedule": LAMBDA_SCHEDULE}
register_loss("isda", _isda, ISDA_PARAMS,
              help="implicit semantic data augmentation")


def _explicit(num_classes: int, feature_dim: int, params: Mapping[str, Any]) -> Any:
    from bench.explicit import ExplicitSemanticAugmentation

    return ExplicitSemanticAugmentation(num_classes, feature_dim, lambda0=params["lambda0"],
                                        samples=params["explicit_samples"], mode=params["cov_mode"],
                                        sync=params["isda_sync"], schedule=params["lambda_schedule"])


# The same statistics, λ and schedule as ISDA, under the same names; M feature draws per sample.
register_loss("explicit", _explicit, {**ISDA_PARAMS, "explicit_samples": Param(1, min=1, label="M",
                                                                               help="feature draws M per sample")},
              help="explicit semantic augmentation: M draws from N(a, λΣ_y) per sample, the loss ISDA bounds")
