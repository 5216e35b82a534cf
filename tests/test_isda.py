"""bench.methods.isda and the class statistics it reads (bench.methods.covariance) against independent
float64 brute force (numpy loops), and against the transcription of the authors' formulation in
bench.methods.isda_reference."""

from __future__ import annotations

import inspect
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bench.methods.covariance as covariance
import bench.methods.isda as isda
from bench.methods.covariance import ClassCovariance
from bench.methods.isda import ISDALoss, isda_sigma2, lambda_at
from bench.methods.isda_reference import ReferenceISDALoss, reference_sigma2

# Batches chosen so that class 0 is in every batch, class 1 only in the first, class 2 is
# one single sample in one batch, class 3 is absent from some batches, class 4 never
# appears, and class 5 appears twice in one batch only.
BATCH_LABELS = [
    [0, 1, 1, 0, 3, 1, 0],
    [0, 0, 3, 3, 0],
    [0, 2, 0, 5, 5, 0],
    [0, 3, 0],
]
C, A = 6, 4


def _batches(seed: int = 0, scale: float = 3.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for labels in BATCH_LABELS:
        y = torch.tensor(labels)
        # Class-dependent offsets so that between-batch mean shifts matter in the merge.
        x = torch.randn(len(labels), A, generator=g) + scale * y[:, None].float()
        out.append((x, y))
    return out


def _brute_stats(batches, num_classes: int, dim: int):
    """Mean, biased covariance and count per class over every feature seen, in float64 numpy."""
    feats = {c: [] for c in range(num_classes)}
    for x, y in batches:
        for row, label in zip(x.double().numpy(), y.tolist()):
            feats[label].append(row)
    mean = np.zeros((num_classes, dim))
    cov = np.zeros((num_classes, dim, dim))
    count = np.zeros(num_classes)
    for c, rows in feats.items():
        if rows:
            arr = np.array(rows)
            mean[c] = arr.mean(0)
            cov[c] = np.cov(arr, rowvar=False, bias=True).reshape(dim, dim)
            count[c] = len(rows)
    return mean, cov, count


def _brute_sigma2(weight: np.ndarray, cov: np.ndarray, labels: list[int]) -> np.ndarray:
    """σ²[i, j] by a per-sample, per-class loop in float64."""
    n, c = len(labels), weight.shape[0]
    out = np.zeros((n, c))
    for i, y in enumerate(labels):
        sigma = cov[y] if cov.ndim == 3 else np.diag(cov[y])
        for j in range(c):
            d = weight[j] - weight[y]
            out[i, j] = d @ sigma @ d
    return out


def _brute_loss(weight, bias, cov, feats, labels, lam) -> float:
    """Mean cross-entropy of the augmented logits, with explicit loops in float64."""
    sig = _brute_sigma2(weight, cov, labels)
    total = 0.0
    for i, y in enumerate(labels):
        z = weight @ feats[i] + bias + 0.5 * lam * sig[i]
        zmax = z.max()
        total += -(z[y] - zmax - math.log(np.exp(z - zmax).sum()))
    return total / len(labels)


def _spd(num_classes: int, dim: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(num_classes, dim, dim, generator=g, dtype=torch.float64)
    return (m @ m.transpose(1, 2) / dim + 0.1 * torch.eye(dim, dtype=torch.float64)).to(dtype)


class _Linear(nn.Module):
    """Stands in for nn.Linear with a weight that gradcheck can perturb."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


@pytest.fixture(params=[False, True], ids=["one-chunk", "many-chunks"])
def chunked(request, monkeypatch):
    """Run a test both with the default chunk sizes and with chunks of one row, recomputing
    σ²'s intermediate in backward, so that every code path is covered on small shapes."""
    if request.param:
        monkeypatch.setattr(covariance, "CHUNK_ELEMS", 1)
        monkeypatch.setattr(isda, "SAVE_ELEMS", 0)
    return request.param


# (a) statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_statistics_equal_numpy_over_all_features(mode, chunked):
    batches = _batches()
    stats = ClassCovariance(C, A, mode)
    for x, y in batches:
        stats.update(x, y)
    mean, cov, count = _brute_stats(batches, C, A)
    if mode == "diagonal":
        cov = np.stack([np.diag(c) for c in cov])
    assert stats.mean.dtype == stats.cov.dtype == torch.float32
    np.testing.assert_array_equal(stats.count.numpy(), count)
    # float32 statistics of O(10)-sized features: a few ulps of the largest entries.
    np.testing.assert_allclose(stats.mean.double().numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(stats.cov.double().numpy(), cov, rtol=1e-4, atol=1e-5)
    assert torch.equal(stats.mean[4], torch.zeros(A)) and not stats.cov[4].any()
    if mode == "full":
        assert torch.equal(stats.cov, stats.cov.transpose(1, 2))  # kept exactly symmetric


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_absent_classes_are_bit_identical(mode, chunked):
    batches = _batches(seed=1)
    stats = ClassCovariance(C, A, mode)
    for x, y in batches:
        before = {k: v.clone() for k, v in stats.state_dict().items()}
        stats.update(x, y)
        for c in set(range(C)) - set(y.tolist()):
            for key, value in stats.state_dict().items():
                assert torch.equal(value[c], before[key][c]), (key, c)


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_absent_class_with_awkward_count_is_bit_identical(mode):
    # In float32 41·(1/41) != 1: a merge written as n·(1/(n+m)) would drift an absent class.
    g = torch.Generator().manual_seed(11)
    stats = ClassCovariance(3, A, mode)
    stats.update(torch.randn(41, A, generator=g) * 7.3, torch.zeros(41, dtype=torch.long))
    before = {k: v[0].clone() for k, v in stats.state_dict().items()}
    for _ in range(3):
        stats.update(torch.randn(5, A, generator=g), torch.tensor([1, 2, 2, 1, 1]))
    for key, value in stats.state_dict().items():
        assert torch.equal(value[0], before[key]), key


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_a_checkpoint_holding_the_covariance_itself_still_loads(mode):
    # Before the scatter n·Σ was stored, checkpoints held Σ as "stats.cov".
    crit = ISDALoss(C, A, mode).double()
    for x, y in _batches(seed=2):
        crit.stats.update(x.double(), y)
    new = crit.state_dict()
    old = {"stats.mean": new["stats.mean"], "stats.cov": crit.stats.cov, "stats.count": new["stats.count"]}
    loaded = ISDALoss(C, A, mode).double()
    loaded.load_state_dict(old)  # strict
    torch.testing.assert_close(loaded.stats.scatter, crit.stats.scatter, rtol=1e-13, atol=1e-13)
    assert torch.equal(loaded.stats.count, crit.stats.count)


def test_update_ignores_autograd_and_detaches():
    stats = ClassCovariance(C, A)
    x = torch.randn(5, A, requires_grad=True)
    stats.update(x, torch.tensor([0, 1, 1, 2, 0]))
    assert not stats.scatter.requires_grad and not stats.mean.requires_grad


# (b) σ² ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", ["full", "diagonal"])
@pytest.mark.parametrize("num_classes,batch", [(5, 9), (9, 5)], ids=["table-C<=N", "per-sample-C>N"])
def test_sigma2_matches_loop(dtype, mode, num_classes, batch, chunked):
    dim = 6
    g = torch.Generator().manual_seed(2)
    weight = torch.randn(num_classes, dim, generator=g, dtype=torch.float64)
    cov = _spd(num_classes, dim, seed=3)
    if mode == "diagonal":
        cov = torch.diagonal(cov, dim1=1, dim2=2).contiguous()
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    got = isda_sigma2(weight.to(dtype), cov.to(dtype), labels)
    want = _brute_sigma2(weight.numpy(), cov.numpy(), labels.tolist())
    assert got.dtype == dtype and got.shape == (batch, num_classes)
    if dtype == torch.float64:
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    else:
        # float32: the inputs are rounded to float32 (relative 6e-8) and the A-term sums
        # accumulate about A ulps; the diagonal form also cancels terms of size
        # Σ_a σ²_a w_a² ≈ max(want), so the absolute tolerance is relative to the largest entry.
        np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-5, atol=1e-5 * want.max())
    target = got.gather(1, labels[:, None])
    assert torch.equal(target, torch.zeros_like(target))  # j = y exactly 0


def test_sigma2_gradient_reaches_weight_not_cov():
    weight = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    cov = _spd(4, 3, seed=4).requires_grad_()
    isda_sigma2(weight, cov, torch.tensor([0, 3, 3, 1, 2])).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    assert cov.grad is None


# (c) gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "diagonal"])
@pytest.mark.parametrize("num_classes,batch", [(4, 7), (7, 4)], ids=["table", "per-sample"])
def test_gradcheck_features_and_weight(mode, num_classes, batch, chunked):
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(batch, 3, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(num_classes, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(num_classes, generator=g, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    crit = ISDALoss(num_classes, 3, mode)
    crit.stats.update(feats, labels)
    crit.stats.update(torch.randn(2 * batch, 3, generator=g), torch.randint(0, num_classes, (2 * batch,)))

    # The statistics are deliberately constants (features detached), so the derivative that
    # gradcheck estimates numerically is the one with the statistics held fixed.
    def frozen(f, w):
        return crit(f, _Linear(w, bias), labels, 0.7, update=False)[0]

    assert torch.autograd.gradcheck(frozen, (feats, weight))

    # The default path (update first): restore the statistics before each evaluation so that
    # repeated calls see the same state; the features are not perturbed here.
    state = {k: v.clone() for k, v in crit.state_dict().items()}

    def updating(w):
        crit.load_state_dict(state)
        return crit(feats.detach(), _Linear(w, bias), labels, torch.tensor(0.7))[0]

    assert torch.autograd.gradcheck(updating, (weight,))
    assert crit.stats.scatter.grad is None and not crit.stats.scatter.requires_grad


# (d) the bound -----------------------------------------------------------------------------


def test_isda_loss_upper_bounds_explicit_augmentation():
    num_classes, dim, batch, draws = 3, 2, 4, 100_000
    g = torch.Generator().manual_seed(6)
    weight = torch.randn(num_classes, dim, generator=g, dtype=torch.float64)
    bias = torch.randn(num_classes, generator=g, dtype=torch.float64)
    feats = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1])
    cov = _spd(num_classes, dim, seed=7)
    crit = ISDALoss(num_classes, dim).double()
    crit.stats.scatter.copy_(cov)  # one sample per class: the scatter is Σ itself
    crit.stats.count.fill_(1.0)
    fc = _Linear(weight, bias)
    chol = torch.linalg.cholesky(cov)
    z = torch.randn(draws, dim, generator=g, dtype=torch.float64)
    z = torch.cat([z, -z])  # antithetic pairs cancel the O(√λ) noise term, so small gaps resolve

    gaps = []
    for lam in (1.0, 0.1, 0.01):
        bound = crit(feats, fc, labels, lam, update=False)[0].item()
        per_sample = []
        for i, y in enumerate(labels.tolist()):
            samples = feats[i] + math.sqrt(lam) * z @ chol[y].T  # ã ~ N(a_i, λ Σ_y)
            ce = F.cross_entropy(samples @ weight.T + bias, torch.full((len(z),), y), reduction="none")
            per_sample.append(ce)
        ce = torch.stack(per_sample).mean(0)  # batch-mean loss for each draw
        explicit = ce.mean().item()
        stderr = ce.std().item() / math.sqrt(len(z))
        assert bound >= explicit - 5 * stderr, (lam, bound, explicit, stderr)
        gaps.append(bound - explicit)
    # Jensen's gap is O(λ): it must shrink roughly tenfold per decade of λ.
    assert gaps[0] > 0 and gaps[1] < 0.3 * gaps[0] and abs(gaps[2]) < 0.3 * gaps[1], gaps


# (e) order: update, then loss ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_statistics_include_current_batch(mode):
    g = torch.Generator().manual_seed(8)
    num_classes, dim = 3, 4
    feats = torch.randn(10, dim, generator=g)
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 0, 1, 0, 2])
    fc = nn.Linear(dim, num_classes)
    loss, logits = ISDALoss(num_classes, dim, mode)(feats, fc, labels, 0.5)
    _, cov, _ = _brute_stats([(feats, labels)], num_classes, dim)
    if mode == "diagonal":
        cov = np.stack([np.diag(c) for c in cov])
    w, b = fc.weight.detach().double().numpy(), fc.bias.detach().double().numpy()
    want = _brute_loss(w, b, cov, feats.double().numpy(), labels.tolist(), 0.5)
    assert loss.item() == pytest.approx(want, rel=1e-5)
    torch.testing.assert_close(logits, fc(feats))  # plain logits are returned


@pytest.mark.parametrize("backend", ["inductor", "cudagraphs"])
@pytest.mark.parametrize("mode", ["full", "diagonal"])
@pytest.mark.parametrize("num_classes,batch", [(4, 9), (7, 4)], ids=["table", "per-sample"])
def test_compiled_loss_is_one_graph_and_equals_brute_force(mode, num_classes, batch, backend):
    # One graph (fullgraph: no break) is what lets CUDA graphs capture the step whole. Checked in
    # float64 against the loops, after two compiled steps so that the merge of a second batch
    # into the compiled graph's statistics is covered as well. Both backends that training uses:
    # inductor's generated code (compile: default, reduce-overhead, ...) and AOTAutograd's graph of
    # torch's own kernels (compile: cudagraphs; on the CPU without the CUDA graphs).
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(11)
    dim = 3
    fc = nn.Linear(dim, num_classes).double()
    crit = ISDALoss(num_classes, dim, mode).double()
    step = torch.compile(lambda f, y, lam: crit(f, fc, y, lam), backend=backend, fullgraph=True, dynamic=False)
    seen = []
    for _ in range(2):
        feats = (torch.randn(batch, dim, generator=g, dtype=torch.float64) * 2).requires_grad_()
        labels = torch.randint(0, num_classes, (batch,), generator=g)
        seen.append((feats.detach(), labels))
        fc.zero_grad()
        loss, logits = step(feats, labels, torch.tensor(0.7, dtype=torch.float64))
        loss.backward()
    mean, cov, count = _brute_stats(seen, num_classes, dim)
    if mode == "diagonal":
        cov = np.stack([np.diag(c) for c in cov])
    np.testing.assert_allclose(crit.stats.cov.numpy(), cov, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(crit.stats.mean.numpy(), mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(crit.stats.count.numpy(), count)
    if mode == "full":  # the compiled merge adds its products pointwise: still exactly symmetric
        assert torch.equal(crit.stats.scatter, crit.stats.scatter.transpose(1, 2))
    w, b = fc.weight.detach().numpy(), fc.bias.detach().numpy()
    assert loss.item() == pytest.approx(_brute_loss(w, b, cov, feats.detach().numpy(), labels.tolist(), 0.7),
                                        rel=1e-10)
    # The gradient against the eager path with the same (final) statistics, which gradcheck verifies.
    grads = (feats.grad.clone(), fc.weight.grad.clone())
    feats.grad = None
    fc.zero_grad()
    crit(feats, fc, labels, 0.7, update=False)[0].backward()
    torch.testing.assert_close(grads, (feats.grad, fc.weight.grad), rtol=1e-10, atol=1e-12)


# (f) autocast ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "diagonal"])
def test_autocast_keeps_float32_statistics(mode):
    g = torch.Generator().manual_seed(9)
    feats = torch.randn(8, 5, generator=g)
    labels = torch.randint(0, 3, (8,), generator=g)
    fc = nn.Linear(5, 3)
    plain = ISDALoss(3, 5, mode)
    plain(feats, fc, labels, 0.5)
    crit = ISDALoss(3, 5, mode)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, logits = crit(feats.bfloat16(), fc, labels, 0.5)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32 and torch.isfinite(loss)
    for name, buf in crit.stats.named_buffers():
        assert buf.dtype == torch.float32, name
    # Only the bf16 rounding of the features differs from the float32 run.
    torch.testing.assert_close(crit.stats.cov, plain.stats.cov, rtol=3e-2, atol=3e-2)
    loss.backward()
    assert fc.weight.grad is not None


# (g) the reference transcription --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "diagonal"])
@pytest.mark.parametrize("num_classes", [4, 12], ids=["C<=N", "C>N"])
def test_reference_matches(mode, num_classes):
    g = torch.Generator().manual_seed(10)
    dim = 5
    ours, ref = ISDALoss(num_classes, dim, mode), ReferenceISDALoss(num_classes, dim, mode)
    fc_a = nn.Linear(dim, num_classes).double()
    fc_b = nn.Linear(dim, num_classes).double()
    fc_b.load_state_dict(fc_a.state_dict())
    for _ in range(4):
        feats = torch.randn(8, dim, generator=g, dtype=torch.float64)
        labels = torch.randint(0, num_classes, (8,), generator=g)
        la, za = ours(feats, fc_a, labels, 0.5)
        lb, zb = ref(feats, fc_b, labels, 0.5)
        la.backward()
        lb.backward()
        torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(za, zb)
        torch.testing.assert_close(fc_a.weight.grad, fc_b.weight.grad, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ours.stats.cov, ref.estimator.cov, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.stats.mean, ref.estimator.mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.stats.count, ref.estimator.count)
    w = fc_a.weight.detach()
    torch.testing.assert_close(
        isda_sigma2(w, ours.stats.cov.double(), labels), reference_sigma2(w, ours.stats.cov.double(), labels)
    )


# (h) schedule ------------------------------------------------------------------------------


def test_lambda_schedule():
    assert lambda_at(0.5, 0, 160) == 0.0
    assert lambda_at(0.5, 80, 160) == 0.25
    assert lambda_at(7.5, 299, 300) == pytest.approx(7.5 * 299 / 300)
    with pytest.raises(ValueError):
        lambda_at(0.5, 0, 0)


# (i) no host-device synchronisation ------------------------------------------------------------


def test_source_has_no_sync_ops():
    # Weak on its own (it only sees spellings); the CUDA test below is the real check.
    source = inspect.getsource(covariance) + inspect.getsource(isda)
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    code = re.sub(r'"""(.|\n)*?"""', "", code)
    for pattern in [
        r"\.item\(",
        r"\.tolist\(",
        r"nonzero",
        r"unique",
        r"bincount",
        r"masked_select",
        r"\.cpu\(",
        r"\.numpy\(",
        r"\[[^\]]*(==|!=|<|>)[^\]]*\]",
        r"\bif\s+.*\.(any|all)\(",
    ]:
        assert not re.search(pattern, code), pattern


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run on a GPU machine")
@pytest.mark.parametrize("mode", ["full", "diagonal"])
@pytest.mark.parametrize("num_classes", [10, 100], ids=["table", "per-sample"])
def test_cuda_training_step_never_syncs(mode, num_classes):
    dev = torch.device("cuda")
    body = nn.Sequential(nn.Linear(32, 16), nn.ReLU()).to(dev)
    fc = nn.Linear(16, num_classes).to(dev)
    crit = ISDALoss(num_classes, 16, mode).to(dev)
    opt = torch.optim.SGD([*body.parameters(), *fc.parameters()], lr=0.1, momentum=0.9)
    x = torch.randn(64, 32, device=dev)
    y = torch.randint(0, num_classes, (64,), device=dev)
    lam = torch.tensor(0.5, device=dev)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss, _ = crit(body(x), fc, y, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(loss).item()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: run on a GPU machine")
@pytest.mark.parametrize("compile_mode", ["reduce-overhead", "cudagraphs"])
def test_cuda_compiled_step_replays_as_a_cuda_graph_and_matches_eager(compile_mode):
    """The training path of `compile: reduce-overhead | cudagraphs`: after warm-up the step replays
    without a host sync, and its statistics and loss follow the eager step's within float32
    rounding (the same two steps from the same state)."""
    import copy

    from bench.train.fastpath import compiled, cudagraph_skips, static_addresses

    dev = torch.device("cuda")
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(32, 16), nn.ReLU()).to(dev)
    fc = nn.Linear(16, 10).to(dev)
    crit = ISDALoss(10, 16, "full").to(dev)
    x = torch.randn(64, 32, device=dev)
    y = torch.randint(0, 10, (64,), device=dev)
    lam = torch.tensor(0.5, device=dev)
    eager = copy.deepcopy((body, fc, crit))

    def make(body, fc, crit):
        opt = torch.optim.SGD([*body.parameters(), *fc.parameters()], lr=0.1, momentum=0.9)

        def forward(x, y, lam):
            return crit(body(x), fc, y, lam)[0]

        return opt, forward

    opt, forward = make(body, fc, crit)
    static_addresses(body, fc, crit)
    step_fn = compiled(forward, compile_mode)

    def step(fn, opt):
        torch.compiler.cudagraph_mark_step_begin()
        loss = fn(x, y, lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach().clone()

    skips = cudagraph_skips()
    losses = [step(step_fn, opt) for _ in range(3)]  # compile, record, first replay
    # A declined graph would run eagerly and pass everything below: it must not happen.
    assert cudagraph_skips() == skips, "torch declined CUDA graphs (TORCH_LOGS=cudagraphs says why)"
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses.append(step(step_fn, opt))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    opt_e, forward_e = make(*eager)
    want = [step(forward_e, opt_e) for _ in range(4)]
    torch.testing.assert_close(torch.stack(losses), torch.stack(want), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(crit.stats.cov, eager[2].stats.cov, rtol=1e-4, atol=1e-5)
    assert crit.stats.count.sum().item() == 4 * 64
