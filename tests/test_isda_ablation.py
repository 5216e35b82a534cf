"""The TPAMI ablation's ISDA variants against a float64 brute force written from docs/method.md.

Brute force: Σ is recomputed from every feature seen so far (the current batch included, since the
statistics are merged before the loss), σ²_ij = (w_j − w_{y_i})ᵀ Σ_{y_i} (w_j − w_{y_i}) is summed
entry by entry, and the loss is −log(exp(z_{i,y_i}) / Σ_j exp(z_ij + λ/2 σ²_ij)) averaged over
the batch. Gradients come from autograd through those loops.
"""

from __future__ import annotations

import pytest
import torch

from bench.experiment.resolve import resolve
from bench.methods import create_loss
from bench.methods.isda import ISDAMethod, strength

C, A = 4, 3


def _sigma(mode: str, seen_x: list[list[float]], seen_y: list[int], c: int) -> list[list[float]]:
    """Σ used for class c: biased covariance of c's features (full / diagonal), of all features
    (shared), pooled within-class (each class's scatter about its own mean, summed over the classes and
    divided by the number of features), or the identity; zero for a class with no feature yet."""
    if mode == "identity":
        return [[1.0 if a == b else 0.0 for b in range(A)] for a in range(A)]
    if mode == "pooled":
        total = [[0.0] * A for _ in range(A)]
        for k in set(seen_y):
            n_k = seen_y.count(k)
            within = _sigma("full", seen_x, seen_y, k)
            total = [[t + n_k * v for t, v in zip(tr, vr)] for tr, vr in zip(total, within)]
        return [[t / len(seen_y) for t in row] for row in total]
    rows = [x for x, y in zip(seen_x, seen_y) if mode == "shared" or y == c]
    out = [[0.0] * A for _ in range(A)]
    if not rows:
        return out
    mean = [sum(r[a] for r in rows) / len(rows) for a in range(A)]
    for a in range(A):
        for b in range(A):
            if mode == "diagonal" and a != b:
                continue
            out[a][b] = sum((r[a] - mean[a]) * (r[b] - mean[b]) for r in rows) / len(rows)
    return out


def _brute_loss(w: torch.Tensor, bias: torch.Tensor, x: torch.Tensor, y: list[int], lam: float,
                sigmas: dict[int, list[list[float]]]) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for i in range(len(y)):
        z = [sum(w[j, a] * x[i, a] for a in range(A)) + bias[j] for j in range(C)]
        s = sigmas[y[i]]
        terms = []
        for j in range(C):
            d = [w[j, a] - w[y[i], a] for a in range(A)]
            sigma2 = sum(d[a] * s[a][b] * d[b] for a in range(A) for b in range(A))
            terms.append(torch.exp(z[j] + lam / 2 * sigma2))
        total = total - torch.log(torch.exp(z[y[i]]) / sum(terms))
    return total / len(y)


@pytest.mark.parametrize("mode", ["identity", "shared", "pooled", "diagonal", "full"])
def test_each_covariance_mode_equals_the_brute_force_over_several_batches(mode):
    g = torch.Generator().manual_seed(11)
    fc = torch.nn.Linear(A, C).double()
    with torch.no_grad():
        fc.weight.copy_(torch.randn(C, A, generator=g, dtype=torch.float64))
        fc.bias.copy_(torch.randn(C, generator=g, dtype=torch.float64))
    crit = ISDAMethod(C, A, lambda0=0.8, mode=mode).double()
    seen_x: list[list[float]] = []
    seen_y: list[int] = []
    for step, (n, lam_progress) in enumerate([(6, 0.5), (5, 0.25), (7, 1.0)]):
        x = (torch.randn(n, A, generator=g, dtype=torch.float64) * (1 + step)).requires_grad_()
        y = torch.randint(0, C, (n,), generator=g)
        y[:2] = torch.tensor([step % C, (step + 1) % C])  # some classes absent from some batches
        seen_x += x.detach().tolist()
        seen_y += y.tolist()
        fc.zero_grad()
        loss, logits = crit(x, fc, y, lam_progress)
        loss.backward()
        got = (loss.detach(), fc.weight.grad.clone(), fc.bias.grad.clone(), x.grad.clone())

        w = fc.weight.detach().clone().requires_grad_()
        b = fc.bias.detach().clone().requires_grad_()
        xb = x.detach().clone().requires_grad_()
        sigmas = {c: _sigma(mode, seen_x, seen_y, c) for c in range(C)}
        want_loss = _brute_loss(w, b, xb, y.tolist(), 0.8 * lam_progress, sigmas)
        want_loss.backward()
        torch.testing.assert_close(got[0], want_loss.detach(), rtol=1e-10, atol=1e-12)
        for a, b_ in zip(got[1:], (w.grad, b.grad, xb.grad)):
            torch.testing.assert_close(a, b_, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(logits, fc(x))


def test_identity_keeps_no_statistics_and_shared_one_covariance():
    assert ISDAMethod(C, A, 0.5, mode="identity").state_dict() == {}
    shared = ISDAMethod(C, A, 0.5, mode="shared")
    assert shared.stats.scatter.shape == (1, A, A) and shared.stats.count.shape == (1,)
    pooled = ISDAMethod(C, A, 0.5, mode="pooled")  # class means and counts, one within-class scatter
    assert pooled.stats.scatter.shape == (1, A, A) and pooled.stats.mean.shape == (C, A)


def test_the_two_readings_of_a_single_covariance_differ_by_the_spread_between_class_means():
    # Two classes far apart, each tight: the covariance of all features is dominated by the distance
    # between the means, the pooled within-class one is not.
    g = torch.Generator().manual_seed(5)
    y = torch.arange(40) % 2
    x = torch.randn(40, A, generator=g, dtype=torch.float64) * 0.1 + y[:, None].double() * 10.0
    fc = torch.nn.Linear(A, C).double()
    covs = {}
    for mode in ("shared", "pooled"):
        crit = ISDAMethod(C, A, 0.5, mode=mode).double()
        crit(x[:25], fc, y[:25], 0.5)
        crit(x[25:], fc, y[25:], 0.5)
        covs[mode] = crit.stats.cov[0]
    xs, ys = x.tolist(), y.tolist()
    torch.testing.assert_close(covs["pooled"], torch.tensor(_sigma("pooled", xs, ys, 0), dtype=torch.float64))
    torch.testing.assert_close(covs["shared"], torch.tensor(_sigma("shared", xs, ys, 0), dtype=torch.float64))
    assert covs["shared"].trace() > 100 * covs["pooled"].trace()


def test_constant_schedule_applies_lambda0_from_the_first_epoch():
    assert [strength(0.5, p, "constant") for p in (0.0, 0.3, 0.99)] == [0.5, 0.5, 0.5]
    assert [strength(0.5, p, "linear") for p in (0.0, 0.5)] == [0.0, 0.25]
    g = torch.Generator().manual_seed(0)
    fc = torch.nn.Linear(A, C).double()
    x = torch.randn(8, A, generator=g, dtype=torch.float64)
    y = torch.arange(8) % C
    constant = ISDAMethod(C, A, 0.8, schedule="constant").double()
    linear = ISDAMethod(C, A, 0.8).double()
    assert constant.strength(0.0) == 0.8 and linear.strength(0.0) == 0.0
    loss, _ = constant(x, fc, y, 0.0)  # epoch 0: λ = λ0 already
    sigmas = {c: _sigma("full", x.tolist(), y.tolist(), c) for c in range(C)}
    want = _brute_loss(fc.weight.detach(), fc.bias.detach(), x, y.tolist(), 0.8, sigmas)
    torch.testing.assert_close(loss.detach(), want, rtol=1e-10, atol=1e-12)
    plain, _ = linear(x, fc, y, 0.0)
    torch.testing.assert_close(plain.detach(), torch.nn.functional.cross_entropy(fc(x), y).detach())


def test_the_new_options_are_isda_run_fields_and_leave_existing_run_ids_alone():
    base = resolve({"method": "isda", "seed": 3})
    assert base.param("lambda_schedule") == "linear"
    assert resolve({"method": "isda", "seed": 3, "lambda_schedule": "linear"}).run_id == base.run_id
    const = resolve({"method": "isda", "seed": 3, "lambda_schedule": "constant"})
    shared = resolve({"method": "isda", "seed": 3, "cov_mode": "shared"})
    pooled = resolve({"method": "isda", "seed": 3, "cov_mode": "pooled"})
    assert len({base.run_id, const.run_id, shared.run_id, pooled.run_id}) == 4 and pooled.slug.endswith("-pooled-s3")
    assert const.slug.endswith("-const-s3") and shared.slug.endswith("-shared-s3") and base.slug.endswith("l0.5-s3")
    crit = create_loss("isda", 10, 8, dict(resolve({"method": "isda", "cov_mode": "identity"}).params))
    assert crit.mode == "identity" and crit.stats is None
