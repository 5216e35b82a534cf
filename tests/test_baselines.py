"""The paper's comparison regularisers (bench.methods.baselines): each loss against a scalar float64 loop,
DisturbLabel's replacement rate over many draws, +dropout, and a run of each method on digits."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from bench.cli import main
from bench.common.errors import ConfigError
from bench.experiment.resolve import resolve
from bench.experiment.runconfig import FIELD_NAMES, RESULT_KEYS
from bench.methods import param_names
from bench.methods.baselines import CenterLoss, DisturbLabel, LargeMarginSoftmax, LqLoss
from bench.train.checkpoint import load_checkpoint
from bench.train.engine import Run
from tests.test_fastpath import _SyncOps

NEW_METHODS = ("large_margin", "disturblabel", "center", "lq", "ce+dropout", "isda+dropout")


def _batch(n: int = 24, a: int = 6, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, nn.Linear, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, a, generator=g)
    fc = nn.Linear(a, c)
    with torch.no_grad():
        fc.weight.copy_(torch.randn(c, a, generator=g))
        fc.bias.copy_(0.3 * torch.randn(c, generator=g))
    y = torch.randint(0, c, (n,), generator=g)
    return x, fc, y


def _rows(x: torch.Tensor, fc: nn.Linear, y: torch.Tensor):
    """Plain Python float lists of the batch."""
    return x.double().tolist(), fc.weight.double().tolist(), fc.bias.double().tolist(), y.tolist()


def _ce(z: list[float], label: int) -> float:
    top = max(z)
    return -(z[label] - top - math.log(sum(math.exp(v - top) for v in z)))


def _lsoftmax_loop(x, fc, y, m: int, lam: float) -> float:
    """L-Softmax as Liu et al. write it, one sample and one class at a time: θ from acos, cos(mθ)
    evaluated directly, k the piece of [0, π] that θ lies in."""
    xs, ws, bs, ys = _rows(x, fc, y)
    total = 0.0
    for xi, yi in zip(xs, ys):
        z = [sum(w * v for w, v in zip(wj, xi)) + bj for wj, bj in zip(ws, bs)]
        dot = z[yi] - bs[yi]
        norm = math.sqrt(sum(w * w for w in ws[yi])) * math.sqrt(sum(v * v for v in xi))
        theta = math.acos(max(-1.0, min(1.0, dot / norm)))
        k = min(m - 1, math.floor(theta * m / math.pi))
        psi = (-1) ** k * math.cos(m * theta) - 2 * k
        z[yi] = (lam * dot + norm * psi) / (1 + lam) + bs[yi]
        total += _ce(z, yi)
    return total / len(xs)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("step", [0, 20_000, 200_000])
def test_large_margin_equals_the_papers_formula_in_a_scalar_loop(m, step):
    x, fc, y = _batch(seed=m)
    crit = LargeMarginSoftmax(m)
    crit.step.fill_(step)
    lam = max(0.0, 1000.0 * (1 + 1e-5 * step) ** -45.0)  # the authors' CIFAR-10 schedule (with augmentation)
    loss, logits = crit(x, fc, y, 0.0)
    assert loss.item() == pytest.approx(_lsoftmax_loop(x, fc, y, m, lam), rel=2e-5, abs=1e-6)
    torch.testing.assert_close(logits, fc(x))  # the plain logits, from which the run's error comes
    assert int(crit.step) == step + 1  # one training step counted
    if step == 200_000 and m > 1:  # the margin makes the target harder than the plain softmax
        assert loss.item() > nn.functional.cross_entropy(fc(x), y).item()


def test_large_margin_without_margin_is_cross_entropy_and_eval_counts_no_step():
    x, fc, y = _batch()
    crit = LargeMarginSoftmax(1).eval()
    loss, _ = crit(x, fc, y, 0.0)
    torch.testing.assert_close(loss, nn.functional.cross_entropy(fc(x), y))
    assert int(crit.step) == 0


def test_large_margin_gradient_equals_finite_differences_of_the_loop():
    x, fc, y = _batch(n=6, seed=3)
    crit = LargeMarginSoftmax(2)
    crit.step.fill_(200_000)
    xg = x.clone().requires_grad_(True)
    crit(xg, fc, y, 0.0)[0].backward()
    lam = 1000.0 * (1 + 1e-5 * 200_000) ** -45.0
    h = 1e-4
    for i, j in [(0, 0), (2, 3), (5, 1)]:
        up, down = x.double().clone(), x.double().clone()
        up[i, j] += h
        down[i, j] -= h
        numeric = (_lsoftmax_loop(up, fc, y, 2, lam) - _lsoftmax_loop(down, fc, y, 2, lam)) / (2 * h)
        assert xg.grad[i, j].item() == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_lq_equals_the_generalised_cross_entropy_in_a_scalar_loop():
    x, fc, y = _batch()
    for q in (0.4, 1.0, 0.05):
        loss, logits = LqLoss(q)(x, fc, y, 0.0)
        xs, ws, bs, ys = _rows(x, fc, y)
        total = 0.0
        for xi, yi in zip(xs, ys):
            z = [sum(w * v for w, v in zip(wj, xi)) + bj for wj, bj in zip(ws, bs)]
            p = math.exp(-_ce(z, yi))
            total += (1 - p**q) / q
        assert loss.item() == pytest.approx(total / len(xs), rel=2e-5)
    torch.testing.assert_close(logits, fc(x))


@pytest.mark.parametrize("follows_lr, factor", [(True, 1.0), (True, 0.01), (False, 0.01)])
def test_center_loss_and_the_centre_update_equal_the_papers_rule_in_a_scalar_loop(follows_lr, factor):
    x, fc, y = _batch(n=16, c=4)
    weight = 0.003
    crit = CenterLoss(4, x.shape[1], weight, 0.5, follows_lr=follows_lr)
    crit.follow_lr(factor)  # the run's learning rate is now `factor` times its initial one
    rate = 0.5 * factor if follows_lr else 0.5
    centres = [[0.0] * x.shape[1] for _ in range(4)]
    for step in range(3):
        xb = x + step  # another batch each step, so that the centres move
        loss, _ = crit(xb, fc, y, 0.0)
        xs, ws, bs, ys = _rows(xb, fc, y)
        ce = spread = 0.0
        for xi, yi in zip(xs, ys):
            z = [sum(w * v for w, v in zip(wj, xi)) + bj for wj, bj in zip(ws, bs)]
            ce += _ce(z, yi)
            spread += 0.5 * sum((v - c) ** 2 for v, c in zip(xi, centres[yi]))
        assert loss.item() == pytest.approx((ce + weight * spread) / len(xs), rel=2e-5)
        new = []
        for j, cj in enumerate(centres):  # Wen et al.: Δc_j = Σ_{y_i=j}(c_j − x_i) / (1 + n_j)
            members = [xi for xi, yi in zip(xs, ys) if yi == j]
            delta = [sum(c - xi[a] for xi in members) / (1 + len(members)) for a, c in enumerate(cj)]
            new.append([c - rate * d for c, d in zip(cj, delta)])
        centres = new
        torch.testing.assert_close(crit.centers.double(), torch.tensor(centres, dtype=torch.float64),
                                   rtol=1e-5, atol=1e-6)
    before = crit.centers.clone()
    crit.eval()(x, fc, y, 0.0)
    assert torch.equal(crit.centers, before)  # no update outside training


def test_the_centre_rate_follows_the_runs_learning_rate_schedule_epoch_by_epoch(tmp_path):
    # The supplement's "initial learning rate" 0.5 of the centres, moving as the network's rate does
    # (Wen et al.'s solver updates the centres with it): 0.5, 0.05, 0.005 over milestones 2 and 3.
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "center", "epochs": 3, "milestones": [2, 3],
                   "gamma": 0.1, "batch_size": 512, "threads": 1})
    assert cfg.param("center_lr_schedule") == "run" and cfg.param("center_lr") == 0.5
    run = Run(cfg, tmp_path)
    update, first = run.crit._update, {}

    def spy(x, labels):
        before = run.crit.centers.double().clone()
        update(x, labels)
        first.setdefault(run.epoch, (before, run.crit.centers.double().clone(), x.double(), labels))

    run.crit._update = spy
    for _ in range(3):
        run.step_epoch()
    assert sorted(first) == [0, 1, 2]
    for epoch, rate in ((0, 0.5), (1, 0.05), (2, 0.005)):
        before, after, x, labels = first[epoch]
        onehot = nn.functional.one_hot(labels, 10).double()
        counts, sums = onehot.sum(0)[:, None], onehot.t() @ x
        expected = before - rate * (counts * before - sums) / (1 + counts)  # Wen et al.'s Δc_j at rate α_t
        torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)
    # "constant": α throughout, whatever the schedule
    const = Run(resolve({**cfg.to_dict(), "center_lr_schedule": "constant"}), tmp_path / "c")
    assert const.cfg.run_id != cfg.run_id and "const" in const.cfg.slug and "const" not in cfg.slug
    const.epoch = 2
    const.crit.follow_lr(0.01)
    x, fc, y = _batch(n=16, a=const.model.num_features, c=10)
    const.crit.train()(x, const.model.fc, y, 1.0)
    onehot = nn.functional.one_hot(y, 10).double()
    expected = -0.5 * -(onehot.t() @ x.double()) / (1 + onehot.sum(0)[:, None])
    torch.testing.assert_close(const.crit.centers.double(), expected, rtol=1e-5, atol=1e-6)


def test_large_margin_takes_gamma_of_the_authors_cifar10_example_with_augmentation():
    from bench.methods import create_loss

    cfg = resolve({"dataset": "cifar10", "arch": "resnet110", "method": "large_margin"})
    assert cfg.param("lsoftmax_gamma") == 1e-5  # myexamples/cifar10+ (cifar10, unaugmented: 2e-5)
    crit = create_loss("large_margin", 10, 64, dict(cfg.params))
    crit.step.fill_(100_000)
    assert crit.annealing().item() == pytest.approx(1000.0 * (1 + 1e-5 * 100_000) ** -45.0, rel=1e-5)
    other = create_loss("large_margin", 10, 64, dict(resolve({**cfg.to_dict(), "lsoftmax_gamma": 2e-5}).params))
    other.step.fill_(100_000)
    assert other.annealing().item() == pytest.approx(1000.0 * (1 + 2e-5 * 100_000) ** -45.0, rel=1e-5)


def test_disturblabel_replaces_labels_at_its_rate_with_uniform_ones():
    n, c = 400_000, 10
    labels = torch.arange(n) % c
    torch.manual_seed(0)
    for rate in (0.05, 0.1, 1.0):
        out = DisturbLabel(c, rate).disturb(labels)
        changed = (out != labels).double().mean().item()
        expected = rate * (c - 1) / c  # a replacement may draw the true class again
        assert abs(changed - expected) < 6 * math.sqrt(expected * (1 - expected) / n) + 1e-12, (rate, changed)
        moved = out[out != labels]
        # the new label is uniform: every class equally often (each class is the true one of n/c)
        counts = torch.bincount(moved, minlength=c).double()
        share = len(moved) / c
        assert (counts - share).abs().max().item() < 6 * math.sqrt(share), counts
    assert torch.equal(DisturbLabel(c, 0.0).disturb(labels), labels)


def test_disturblabel_trains_on_the_disturbed_labels_and_evaluates_on_the_true_ones():
    x, fc, y = _batch(n=64)
    crit = DisturbLabel(5, 0.5)
    torch.manual_seed(7)
    loss, _ = crit(x, fc, y, 0.0)
    torch.manual_seed(7)
    drawn = crit.disturb(y)
    assert not torch.equal(drawn, y)
    xs, ws, bs, _ = _rows(x, fc, y)
    loop = sum(_ce([sum(w * v for w, v in zip(wj, xi)) + bj for wj, bj in zip(ws, bs)], yi)
               for xi, yi in zip(xs, drawn.tolist())) / len(xs)
    assert loss.item() == pytest.approx(loop, rel=2e-5)
    crit.eval()
    torch.testing.assert_close(crit(x, fc, y, 0.0)[0], nn.functional.cross_entropy(fc(x), y))


def test_the_test_error_never_goes_through_the_loss(tmp_path):
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "disturblabel", "disturb_rate": 1.0,
                   "epochs": 1, "threads": 1})
    run = Run(cfg, tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("evaluation called the training loss")

    run.crit.forward = refuse
    loss, err, _ = run.evaluate()
    assert math.isfinite(loss) and 0 <= err <= 100


def test_disturb_rate_follows_the_supplement():
    rate = {(d, a): resolve({"dataset": d, "arch": a, "method": "disturblabel"}).param("disturb_rate")
            for d in ("cifar10", "cifar100") for a in ("resnet110", "wrn28_10")}
    assert rate == {("cifar10", "resnet110"): 0.05, ("cifar100", "resnet110"): 0.1,
                    ("cifar10", "wrn28_10"): 0.05, ("cifar100", "wrn28_10"): 0.05}
    assert resolve({"method": "lq"}).param("lq_q") == 0.4
    assert dict(resolve({"method": "center"}).params) == {"center_weight": 0.003, "center_lr": 0.5,
                                                          "center_lr_schedule": "run"}
    assert resolve({"method": "large_margin"}).param("lsoftmax_margin") == 2


def test_dropout_sits_between_the_convolutions_of_every_block_and_never_on_the_features(tmp_path):
    # The ISDA authors' CIFAR ResNets drop inside each basic block (networks/resnet.py), so the
    # features the loss and ISDA's statistics see are the pooled ones as the network made them.
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": "ce+dropout", "batch_size": 512,
                   "threads": 1})
    assert cfg.drop_rate == 0.3
    run = Run(cfg, tmp_path)
    activated: dict[int, torch.Tensor] = {}
    convolved: dict[int, torch.Tensor] = {}
    for i, block in enumerate(run.model.blocks):
        block.bn1.register_forward_hook(lambda m, a, out, i=i: activated.__setitem__(i, torch.relu(out).detach()))
        block.conv2.register_forward_pre_hook(lambda m, a, i=i: convolved.__setitem__(i, a[0].detach()))
    pooled, seen = [], []
    run.model.pool.register_forward_hook(lambda m, a, out: pooled.append(out.flatten(1).detach()))
    forward = run.crit.forward
    run.crit.forward = lambda feats, fc, y, progress: (seen.append(feats.detach()), forward(feats, fc, y, progress))[1]
    x, y = next(iter(run.train.epoch(torch.Generator().manual_seed(0))))
    run.model.train()
    run._loss(x, y, 0.0)
    assert len(activated) == len(convolved) == len(run.model.blocks) == 15
    for i in activated:
        kept = convolved[i] != 0
        torch.testing.assert_close(convolved[i][kept], activated[i][kept] / 0.7)  # inverted dropout
        dropped = (convolved[i][activated[i] != 0] == 0).double().mean().item()
        assert abs(dropped - 0.3) < 0.02, (i, dropped)
    assert torch.equal(seen[0], pooled[0])  # the pooled features reach the loss undropped


def test_dropout_keeps_a_networks_own_rate_and_is_refused_where_the_network_has_none():
    wrn = {"dataset": "digits", "arch": "wrn16_8", "method": "isda+dropout"}
    assert resolve(wrn).drop_rate == 0.3
    assert resolve({**wrn, "drop_rate": 0.5}).drop_rate == 0.5
    assert resolve({**wrn, "drop_rate": 0.0}).drop_rate == 0.3  # "if it is not applied in the basic model"
    assert resolve({"dataset": "digits", "arch": "resnet32", "method": "isda"}).drop_rate == 0.0
    with pytest.raises(ConfigError, match="method.*resnext29_8x64d.*no dropout.*resnet110"):
        resolve({"dataset": "cifar10", "arch": "resnext29_8x64d", "method": "ce+dropout"})


@pytest.mark.parametrize("method", NEW_METHODS)
def test_each_method_trains_on_digits_from_the_command_line(tmp_path, method, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", method, "--epochs", "1", "--batch-size", "256", "--threads", "1",
                 "--out", str(out), "--wandb", "disabled"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "completed" and result["method"] == method
    assert math.isfinite(result["final_test_error"])
    # Every key result.json holds is reserved: a method's parameter cannot overwrite one.
    assert set(result) <= set(FIELD_NAMES) | set(RESULT_KEYS) | set(param_names())


@pytest.mark.parametrize("method", ["large_margin", "disturblabel", "center", "lq", "isda+dropout"])
def test_a_training_epoch_of_each_baseline_reads_the_device_only_at_its_end(tmp_path, method):
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": method, "batch_size": 256, "epochs": 2,
                   "seed": 0, "threads": 1})
    run = Run(cfg, tmp_path)
    run.epoch = 1
    with _SyncOps() as sync:
        loss, _ = run.train_epoch(0.5, None)
    assert sync.seen == ["_local_scalar_dense"] * 2, sync.seen
    assert math.isfinite(loss)


@pytest.mark.parametrize("method", ["center", "large_margin"])
def test_a_loss_with_state_resumes_from_its_checkpoint_bit_identically(tmp_path, method):
    cfg = resolve({"dataset": "digits", "arch": "resnet32", "method": method, "batch_size": 256, "epochs": 2,
                   "seed": 3, "threads": 1})
    straight = Run(cfg, tmp_path / "a")
    rows = [straight.step_epoch(), straight.step_epoch()]
    first = Run(cfg, tmp_path / "b")
    (tmp_path / "b").mkdir()
    first.step_epoch()
    first.save()
    resumed = Run(cfg, tmp_path / "b")
    resumed.load_state_dict(load_checkpoint(tmp_path / "b", cfg.run_id))
    assert any(v.abs().sum() > 0 for v in resumed.crit.state_dict().values())  # the state came back
    again = resumed.step_epoch()
    timing = ("epoch_time_s",)
    assert {k: v for k, v in again.items() if k not in timing} == {k: v for k, v in rows[1].items() if k not in timing}
    for key, value in straight.crit.state_dict().items():
        assert torch.equal(value, resumed.crit.state_dict()[key])


def _center_worker(rank: int, out: str) -> None:
    from tests.test_distributed import A, C, step_data

    torch.manual_seed(0)
    crit, fc = CenterLoss(C, A, 0.003, 0.5), nn.Linear(A, C)
    for step in (0, 1, 2, 4):  # uneven local batches, as a last batch of an epoch is
        crit(step_data(step, rank)[0].float(), fc, step_data(step, rank)[1], 0.0)
    torch.save(crit.centers, f"{out}/centers{rank}.pt")


@pytest.mark.slow
def test_center_loss_centres_under_ddp_equal_one_process_fed_the_whole_batches(tmp_path):
    from tests.test_distributed import WORLD, A, C, spawn, step_data

    spawn(_center_worker, str(tmp_path))
    torch.manual_seed(0)
    crit, fc = CenterLoss(C, A, 0.003, 0.5), nn.Linear(A, C)
    for step in (0, 1, 2, 4):
        x, y = (torch.cat(t) for t in zip(*(step_data(step, r) for r in range(WORLD))))
        crit(x.float(), fc, y, 0.0)
    assert crit.centers.abs().sum() > 0
    for rank in range(WORLD):
        torch.testing.assert_close(torch.load(tmp_path / f"centers{rank}.pt"), crit.centers)
