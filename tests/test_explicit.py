"""Explicit semantic augmentation: as M grows its loss tends to the expected loss, below ISDA's bound.

The expectation E_δ[CE(W(a_i + δ) + b, y_i)], δ ~ N(0, λΣ_{y_i}), is estimated here independently:
Σ from numpy over the features seen, logits drawn by numpy's multivariate normal (its own
factorisation and generator) from N(W a_i + b, λ W Σ Wᵀ), 400,000 draws per sample.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.experiment.resolve import resolve
from bench.methods import create_loss
from bench.methods.explicit import ExplicitSemanticAugmentation, cholesky_factors
from bench.methods.isda import ISDAMethod

C, A, LAMBDA0 = 3, 2, 0.9


def _setup(mode: str):
    g = torch.Generator().manual_seed(4)
    fc = torch.nn.Linear(A, C).double()
    with torch.no_grad():
        fc.weight.copy_(torch.tensor([[1.5, -0.5], [-1.0, 1.0], [0.2, -1.2]], dtype=torch.float64))
        fc.bias.copy_(torch.tensor([0.1, -0.2, 0.05], dtype=torch.float64))
    history = torch.randn(60, A, generator=g, dtype=torch.float64) @ torch.tensor([[1.0, 0.6], [0.0, 0.8]],
                                                                                   dtype=torch.float64)
    history_y = torch.arange(60) % C
    history = history + history_y[:, None].double() * 0.3
    x = torch.randn(4, A, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 1])
    return fc, history, history_y, x, y


def _sigma(mode: str, xs: np.ndarray, ys: np.ndarray, c: int) -> np.ndarray:
    if mode == "identity":
        return np.eye(A)
    if mode == "pooled":  # each class's scatter about its own mean, over all the features
        return sum((ys == k).sum() * np.cov(xs[ys == k].T, bias=True) for k in np.unique(ys)) / len(ys)
    rows = xs if mode == "shared" else xs[ys == c]
    cov = np.cov(rows.T, bias=True)
    return np.diag(np.diag(cov)) if mode == "diagonal" else cov


def _expected_loss(mode: str, fc, xs, ys, x, y, lam: float) -> tuple[float, float]:
    """(mean over the batch of E[CE], its Monte Carlo standard error), with numpy only."""
    rng = np.random.default_rng(123)
    w, b = fc.weight.detach().numpy(), fc.bias.detach().numpy()
    means, variances = [], []
    for a, label in zip(x.numpy(), y.numpy()):
        z = rng.multivariate_normal(w @ a + b, lam * w @ _sigma(mode, xs, ys, label) @ w.T, size=400_000,
                                    method="svd")
        top = z.max(1, keepdims=True)
        ce = -(z[:, label] - top[:, 0]) + np.log(np.exp(z - top).sum(1))
        means.append(ce.mean())
        variances.append(ce.var() / len(ce))
    return float(np.mean(means)), math.sqrt(sum(variances)) / len(means)


@pytest.mark.parametrize("mode", ["full", "diagonal", "shared", "pooled", "identity"])
def test_loss_tends_to_the_expectation_as_m_grows_and_stays_below_isdas_bound(mode):
    fc, history, history_y, x, y = _setup(mode)
    progress = 0.7
    lam = LAMBDA0 * progress
    seen = torch.cat([history, x])
    seen_y = torch.cat([history_y, y])
    expected, se = _expected_loss(mode, fc, seen.numpy(), seen_y.numpy(), x, y, lam)

    def loss(samples: int, seed: int) -> float:
        crit = ExplicitSemanticAugmentation(C, A, LAMBDA0, samples, mode=mode).double()
        if crit.stats is not None:
            crit.stats.update(history, torch.zeros_like(history_y) if mode == "shared" else history_y)
        torch.manual_seed(seed)
        value, logits = crit(x, fc, y, progress)  # merges the batch first, as ISDA
        torch.testing.assert_close(logits, fc(x))
        return value.item()

    spread = {}
    for samples in (1, 100, 10_000):
        values = np.array([loss(samples, seed) for seed in range(12)])
        spread[samples] = np.sqrt(np.mean((values - expected) ** 2))
    # The error of an M-draw average shrinks as 1/√M: ×10 from 1 to 100 draws, ×100 to 10,000.
    assert spread[100] < spread[1] / 4 and spread[10_000] < spread[100] / 4
    big = np.mean([loss(100_000, seed) for seed in range(3)])
    assert abs(big - expected) < 5 * (se + spread[10_000] / math.sqrt(30))

    isda = ISDAMethod(C, A, LAMBDA0, mode=mode).double()
    if isda.stats is not None:
        isda.stats.update(history, torch.zeros_like(history_y) if mode == "shared" else history_y)
    bound = isda(x, fc, y, progress)[0].item()
    assert expected < bound - 5 * se  # Jensen: the expected loss lies strictly below ISDA's surrogate


def test_no_strength_means_every_copy_is_the_feature_itself():
    fc, history, history_y, x, y = _setup("full")
    crit = ExplicitSemanticAugmentation(C, A, LAMBDA0, 5).double()
    value, _ = crit(x, fc, y, 0.0)  # linear schedule, first epoch: λ = 0
    torch.testing.assert_close(value, torch.nn.functional.cross_entropy(fc(x), y))
    const = ExplicitSemanticAugmentation(C, A, LAMBDA0, 5, schedule="constant")
    assert const.strength(0.0) == LAMBDA0


def test_draws_have_the_class_covariance():
    cov = torch.tensor([[[2.0, 0.8], [0.8, 1.0]], [[0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    factors = cholesky_factors(cov)
    torch.testing.assert_close(factors[0] @ factors[0].T, cov[0], rtol=1e-5, atol=0)
    assert factors[1].abs().max() < 1e-9  # a class never seen: no noise (as ISDA's σ² = 0)
    crit = ExplicitSemanticAugmentation(2, 2, 1.0, 200_000).double()
    crit.stats.scatter.copy_(cov * 10)
    crit.stats.count.fill_(10)
    torch.manual_seed(0)
    draws = crit.noise(torch.tensor([0, 1]), 2, torch.float64, torch.device("cpu"))
    got = np.cov(draws[0].numpy().T, bias=True)
    np.testing.assert_allclose(got, cov[0].numpy(), atol=0.03)
    assert draws[1].abs().max() < 1e-6


def test_explicit_is_a_method_with_isdas_parameters_and_its_own_sample_count():
    cfg = resolve({"method": "explicit", "explicit_samples": 4, "cov_mode": "diagonal"})
    assert dict(cfg.params) == {"lambda0": 0.5, "cov_mode": "diagonal", "isda_sync": "global",
                                "lambda_schedule": "linear", "explicit_samples": 4}
    crit = create_loss("explicit", 10, 8, dict(cfg.params))
    assert isinstance(crit, ExplicitSemanticAugmentation) and crit.samples == 4 and crit.mode == "diagonal"
    assert resolve({"method": "explicit"}).param("explicit_samples") == 1
    from bench.common.errors import ConfigError

    for bad in (0, 2.5, -1):
        with pytest.raises(ConfigError) as info:
            resolve({"method": "explicit", "explicit_samples": bad})
        assert info.value.key == "explicit_samples"
