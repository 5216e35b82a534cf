"""bench.train.fastpath: BatchNorm step counters dropped without changing any number; one graph per compiled step."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from bench.experiment.resolve import resolve
from bench.models import create_model
from bench.train.engine import Run
from bench.train.fastpath import COUNTER, drop_batchnorm_counters, load_model_state, with_batchnorm_counters


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    a = create_model("resnet32", num_classes=10, in_chans=1)
    b = create_model("resnet32", num_classes=10, in_chans=1)
    b.load_state_dict(a.state_dict())
    return a, b


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_dropping_the_counters_changes_no_weight_and_no_running_statistic():
    kept, dropped = _pair()
    assert drop_batchnorm_counters(dropped) == _batchnorms(dropped) == 33  # ResNet-32: stem, 15 blocks × 2, 2 shortcuts
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for m in (kept, dropped)]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
        for model, opt in zip((kept, dropped), opts):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    want, got = kept.state_dict(), dropped.state_dict()
    assert all(k.endswith("." + COUNTER) for k in set(want) - set(got)) and not set(got) - set(want)
    assert sum(k.endswith("." + COUNTER) for k in want) == 33 and int(want["stem.1." + COUNTER]) == 3
    for key, value in got.items():  # bit for bit
        assert torch.equal(value, want[key]), key


def test_a_training_forward_dispatches_one_op_fewer_per_batchnorm():
    class Count(TorchDispatchMode):
        ops = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            self.ops += 1
            return func(*args, **(kwargs or {}))

    counts = []
    for model in _pair():
        if counts:
            drop_batchnorm_counters(model)
        with Count() as c:
            model(torch.randn(4, 1, 8, 8))
        counts.append(c.ops)
    assert counts[0] - counts[1] == 33


def test_a_cumulative_average_batchnorm_keeps_its_counter_and_none_is_invented():
    model = nn.Sequential(nn.BatchNorm2d(3, momentum=None), nn.BatchNorm2d(3),
                          nn.BatchNorm2d(3, track_running_stats=False))
    stock = model.state_dict()
    assert drop_batchnorm_counters(model) == 1
    assert getattr(model[0], COUNTER) is not None and getattr(model[1], COUNTER) is None
    # Put back, the counters are the stock ones: the layer that tracks nothing gets none.
    assert sorted(with_batchnorm_counters(model, model.state_dict(), 7)) == sorted(stock)


def test_a_checkpoint_written_with_the_counters_still_loads(tmp_path):
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "isda", "epochs": 1, "threads": 1})
    run = Run(cfg, tmp_path)
    state = run.state_dict()
    old = create_model("resnet32", num_classes=10, in_chans=1).state_dict()  # the earlier layout
    assert sum(k.endswith("." + COUNTER) for k in old) == 33
    for model_state in (old, {**old, **state["model"]}):  # with and without torch's version metadata
        Run(cfg, tmp_path).load_state_dict({**state, "model": model_state})


def test_a_model_state_that_does_not_fit_is_still_refused():
    model = create_model("resnet32", num_classes=10, in_chans=1)
    drop_batchnorm_counters(model)
    state = model.state_dict()
    state.pop("fc.bias")
    with pytest.raises(RuntimeError, match="missing keys \\['fc.bias'\\]"):
        load_model_state(model, state)
    with pytest.raises(RuntimeError, match="unexpected keys \\['extra'\\]"):
        load_model_state(model, {**model.state_dict(), "extra": torch.zeros(1)})


def test_a_checkpoint_holds_the_counters_a_stock_batchnorm_would(tmp_path):
    from bench.train.trainer import run

    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "ce", "epochs": 2, "threads": 1})
    run(cfg, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["model"]
    steps_per_epoch = sum(1 for _ in Run(cfg, tmp_path / "x").train.epoch(torch.Generator().manual_seed(0)))
    counters = {k: int(v) for k, v in state.items() if k.endswith("." + COUNTER)}
    assert len(counters) == 33 and set(counters.values()) == {2 * steps_per_epoch}
    create_model("resnet32", num_classes=10, in_chans=1).load_state_dict(state)  # strict, into the stock network


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet32", "resnet110", "se_resnet110", "wrn16_8", "wrn28_10", "resnext29_8x64d",
                                  "densenet_bc_100_12", "shake_shake26_2x32d", "resnet50"])
def test_each_networks_isda_forward_is_one_graph(arch):
    # A graph break would split a compiled step into several graphs, each its own CUDA graph with
    # eager work between them. Traced only (dynamo), not compiled: no code generation needed.
    from bench.perf.training_step import model_and_loss

    dataset, mode, size = ("imagenet", "diagonal", 64) if arch == "resnet50" else ("cifar100", "full", 32)
    model, crit, _ = model_and_loss(arch, dataset, "isda", torch.device("cpu"), False, mode)

    def forward(x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return crit(model.features(x), model.fc, y, lam)[0]

    torch._dynamo.reset()
    found = torch._dynamo.explain(forward)(torch.randn(2, 3, size, size), torch.tensor([3, 7]), torch.tensor(0.5))
    assert (found.graph_count, found.graph_break_count) == (1, 0), found.break_reasons


_TORCH_COMPILE = torch.compile


@pytest.fixture
def inductor_probe(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, set[int], set[int]]]:
    """While active, torch.compile (whatever mode it is given) compiles with Inductor and records,
    for each graph: (backward?, inputs the graph writes to, inputs it may keep in place)."""
    from torch._dynamo.backends.cudagraphs import find_input_mutations
    from torch._inductor.compile_fx import compile_fx, compile_fx_inner

    graphs: list[tuple[bool, set[int], set[int]]] = []

    def inner(gm, example_inputs, **kwargs):
        graphs.append((bool(kwargs.get("is_backward")), set(find_input_mutations(gm.graph)),
                       set(kwargs.get("static_input_idxs") or ())))
        return compile_fx_inner(gm, example_inputs, **kwargs)

    def probing_compile(fn, mode=None, dynamic=None, backend=None):
        return _TORCH_COMPILE(fn, dynamic=dynamic, backend=lambda gm, ex: compile_fx(gm, ex, inner_compile=inner))

    monkeypatch.setattr(torch, "compile", probing_compile)
    torch._dynamo.reset()
    # A graph found in Inductor's caches is not compiled again, and would pass by unseen. (The
    # configs' own patch(): monkeypatch's undo breaks the config modules for later compilations.)
    with torch._inductor.config.patch(fx_graph_cache=False), torch._functorch.config.patch(enable_autograd_cache=False):
        yield graphs
    torch._dynamo.reset()


@pytest.mark.slow
def test_a_cuda_graph_step_writes_only_to_inputs_it_may_keep_in_place(inductor_probe):
    """Inductor replays a graph as a CUDA graph only if every input the graph writes to keeps its
    address (a "static" input); otherwise it silently runs it without. perf step's ISDA training
    step under `--compile reduce-overhead` writes to each BatchNorm's running mean and variance and
    to the ISDA mean, scatter and count: all must be static. The graph is the same on the CPU."""
    from bench.perf import training_step as perf_train

    model, crit, opt = perf_train.model_and_loss("resnet32", "cifar10", "isda", torch.device("cpu"), False, "full")
    step = perf_train.train_step(model, crit, "isda", opt, False, 0.5, "reduce-overhead")
    step(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    assert [g[0] for g in inductor_probe] == [False, True], inductor_probe  # one forward, one backward
    (_, written, static), (_, written_back, _) = inductor_probe
    tracked = sum(1 for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats)
    assert len(written) == 2 * tracked + 3  # running mean and var per BatchNorm; ISDA mean, scatter, count
    assert written <= static
    assert not written_back

    # The probe does see a written input that may move: a tensor that no module owns.
    def bump(x: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
        counter.add_(1)
        return x * 2

    inductor_probe.clear()
    torch.compile(bump)(torch.ones(3), torch.zeros(()))
    (_, written, static), = inductor_probe
    assert len(written) == 1 and not written <= static


# Ops whose CUDA kernels make the host wait for the device: a scalar read (item, float, bool), or
# an output whose size depends on the data (nonzero, unique, boolean-mask indexing, ...).
_SYNCING = {"_local_scalar_dense", "nonzero", "unique", "_unique", "_unique2", "unique_dim", "unique_consecutive",
            "bincount", "masked_select", "is_nonzero", "equal", "repeat_interleave"}


class _SyncOps(TorchDispatchMode):
    """Records, in order, each dispatched op that would synchronise on CUDA (seen on the CPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func._schema.name.split("::")[-1]
        indices = args[1] if name in ("index", "index_put", "index_put_", "_index_put_impl_") else ()
        masks = [i for i in indices if isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)]
        if name in _SYNCING or masks:
            self.seen.append(name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", [{"method": "isda"}, {"method": "isda", "cov_mode": "diagonal"},
                                    {"method": "isda", "cov_mode": "pooled"},
                                    {"method": "isda+cutout"}, {"method": "ce"}, {"method": "focal"}],
                         ids=["isda", "isda-diagonal", "isda-pooled", "isda+cutout", "ce", "focal"])
def test_a_training_epoch_reads_the_device_once_at_its_end_not_per_step(tmp_path, method):
    """The step loop train.py runs on a GPU (device-resident batches, augmentation, update, loss,
    backward, optimizer, metric sums), dispatched on the CPU: no op that would make the host wait
    for the device, except the two reads of the epoch's sums after the last step. Complements the
    CUDA test under set_sync_debug_mode, which needs a GPU."""
    cfg = resolve({"dataset": "digits", "arch": "resnet32", **method, "batch_size": 256, "epochs": 2, "seed": 0,
                   "threads": 1})
    run = Run(cfg, tmp_path)
    assert len(run.train) >= 5
    run.epoch = 1  # λ > 0: the ISDA term is in the graph
    with _SyncOps() as sync:
        loss, error = run.train_epoch(0.25, None)
    assert sync.seen == ["_local_scalar_dense"] * 2, sync.seen
    assert loss > 0 and 0 <= error <= 100


def test_the_sync_recorder_sees_what_a_step_would_wait_for():
    x = torch.randn(8, 3)
    with _SyncOps() as sync:
        x.sum().item()
        x[x > 0]
        torch.unique(torch.tensor([1, 1, 2]))
        x[torch.tensor([0, 2])]  # integer indexing: the device computes it alone
        torch.where(x > 0)
    assert sync.seen == ["_local_scalar_dense", "index", "_unique2", "nonzero"]
