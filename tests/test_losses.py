"""Losses other than ISDA, each against a float64 scalar loop written from its formula."""

from __future__ import annotations

import math

import pytest
import torch

from bench.common.errors import ConfigError
from bench.experiment.resolve import resolve
from bench.methods import create_loss
from bench.methods.losses import focal_loss


def _focal_brute_force(logits: list[list[float]], labels: list[int], gamma: float, alpha: float) -> float:
    """−α (1 − p_y)^γ log p_y per sample, p the softmax, averaged over the batch, one number at a time."""
    total = 0.0
    for row, y in zip(logits, labels):
        top = max(row)
        norm = sum(math.exp(z - top) for z in row)
        p = math.exp(row[y] - top) / norm
        total += -alpha * (1.0 - p) ** gamma * math.log(p)
    return total / len(labels)


@pytest.mark.parametrize("gamma, alpha", [(1.0, 0.5), (2.0, 1.0), (0.0, 0.25), (1.5, 0.0)])
def test_focal_loss_equals_a_scalar_loop_in_float64(gamma, alpha):
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(17, 7, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 7, (17,), generator=g)
    want = _focal_brute_force(logits.tolist(), labels.tolist(), gamma, alpha)
    got = focal_loss(logits.double(), labels, gamma, alpha).item()
    assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


def test_focal_defaults_are_the_papers_alpha_half_gamma_one():
    cfg = resolve({"method": "focal"})
    assert (cfg.param("focal_gamma"), cfg.param("focal_alpha")) == (1.0, 0.5)
    assert cfg.slug == "digits-resnet32-focal-g1-a0.5-s0"
    crit = create_loss("focal", 7, 5, dict(cfg.params))
    fc = torch.nn.Linear(5, 7).double()
    x = torch.randn(9, 5, dtype=torch.float64)
    y = torch.arange(9) % 7
    loss, logits = crit(x, fc, y, 0.0)
    assert loss.item() == pytest.approx(_focal_brute_force(fc(x).tolist(), y.tolist(), 1.0, 0.5), rel=1e-6)
    assert torch.equal(logits, fc(x))


@pytest.mark.parametrize("value", [-0.1, 1.5, "half", float("nan")])
def test_focal_alpha_outside_zero_one_is_refused(value):
    with pytest.raises(ConfigError) as info:
        resolve({"method": "focal", "focal_alpha": value})
    assert info.value.key == "focal_alpha" and "<= 1" in str(info.value)
