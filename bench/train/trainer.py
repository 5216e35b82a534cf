"""One training run: ``run(cfg, run_dir)`` trains, checkpoints every epoch, resumes, and reports.

The run directory (bench.rundir) holds config.yaml, metrics.csv, checkpoint.pt and, written last,
result.json, and .lock, which the training process holds (bench.rundir.lock). On CPU a seeded run is
bit-identical when repeated and after a kill and resume: every epoch reseeds torch from (seed, epoch), and
the checkpoint restores the rest.

Multi-process (DDP) runs: every process calls ``run`` inside an initialised process group
(bench.train.distributed.init_from_env). ``cfg.batch_size`` is the global batch, split across ranks;
the model is wrapped in DistributedDataParallel (BatchNorm per rank, as in the reference);
metrics are summed over ranks, so every rank sees the global numbers; evaluation is sharded the
same way. Only rank 0 writes files, logs and tracks; every rank reads the checkpoint on resume.
At each epoch's end rank 0's buffers (BatchNorm running statistics, and the ISDA statistics under
global sync) are broadcast, so the checkpoint is every rank's state. With one process nothing of
this runs and the results are those of the single-process code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm import tqdm

from bench.common.errors import ConfigError
from bench.common.files import atomic_write, atomic_write_json, atomic_write_text, make_dir
from bench.common.provenance import device_name, git_sha, versions
from bench.data.batches import make_batches
from bench.data.sources import load_dataset
from bench.experiment.archs import ARCHS
from bench.experiment.recipes import lr_at
from bench.experiment.runconfig import ID_PARAMS, RunConfig
from bench.methods import HEAD_DROPOUT, create_loss, parse_method, plugins
from bench.models import create_model
from bench.rundir.lock import LOCK_FILE, RunLock
from bench.rundir.owner import check_run_dir
from bench.train import distributed
from bench.train.fastpath import (
    CUDA_GRAPH_MODES,
    compiled,
    cuda_settings,
    cudagraph_skips,
    deterministic_if_compiled_on_cpu,
    drop_batchnorm_counters,
    load_model_state,
    scalar_input,
    static_addresses,
    with_batchnorm_counters,
)

METRIC_COLUMNS = ("epoch", "lr", "lambda", "train_loss", "train_error", "test_loss", "test_error", "epoch_time_s")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "cpu or auto (no CUDA device is visible)")
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run computes under bf16 autocast: ``bf16``, or ``auto`` on a GPU; ``fp32`` never."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch + 1


def _metrics_csv(rows: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (row[k] if k == "epoch" else repr(float(row[k]))) for k in METRIC_COLUMNS})
    return buf.getvalue()


def _load_checkpoint(path: Path, run_id: str) -> dict[str, Any] | None:
    """The checkpoint if it is whole and ours; a damaged one is set aside and the run restarts."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("run_id") != run_id:
            raise ValueError(f"it belongs to run {state.get('run_id')!r}, not {run_id!r}")
        return state
    except Exception as exc:  # noqa: BLE001 - any damage means: start again
        bad = path.with_name(path.name + ".corrupt")
        path.replace(bad)
        print(f"warning: checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); "
              f"moved to {bad.name}, starting from epoch 0", file=sys.stderr)
        return None


class _Step(nn.Module):
    """What DDP wraps: one training forward, loss included.

    Every use of the weights, the ISDA term's reading of ``fc.weight`` too, happens inside DDP's
    forward. The Run is held in a tuple so that its ISDA statistics are not registered as this
    module's buffers: DDP would overwrite them with rank 0's before every step.
    """

    def __init__(self, run: Run):
        super().__init__()
        self.model = run.model
        self._run = (run,)

    def forward(self, x: torch.Tensor, y: torch.Tensor, progress: float | torch.Tensor,
                pad_to: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run[0].loss_fn(x, y, progress, pad_to)


class Run:
    """The state of one run between epochs."""

    def __init__(self, cfg: RunConfig, run_dir: Path):
        self.cfg, self.dir = cfg, run_dir
        self.rank, self.world = distributed.rank_and_world()
        self.main = self.rank == 0
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", torch.cuda.current_device())  # init_from_env set it
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cuda_settings(self.device)
        self.method = parse_method(cfg.method)
        self.bf16 = uses_bf16(cfg.precision, self.device)
        train, test, self.info = load_dataset(cfg.dataset, cfg.data_root, cfg.download, cfg.train_size)
        resident = cfg.fast_loader or self.device.type == "cpu"
        randaugment = (cfg.randaugment_n, cfg.randaugment_m) if cfg.randaugment_n is not None else None
        self.train = make_batches(train, self.info, cfg.batch_size, self.device, self.method,
                                  resident=resident, workers=cfg.workers, randaugment=randaugment)
        self.test = make_batches(test, self.info, max(cfg.batch_size, 256), self.device, None,
                                 resident=resident, workers=cfg.workers)

        torch.manual_seed(cfg.seed)
        # Always given where the network takes it: 0 must mean no dropout, not the network's default.
        kwargs = {"drop_rate": cfg.drop_rate} if ARCHS[cfg.arch].dropout else {}
        self.model = create_model(cfg.arch, num_classes=self.info.num_classes, in_chans=self.info.channels,
                                  **kwargs).to(self.device)
        drop_batchnorm_counters(self.model)
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # +dropout (bench.methods): on the classifier's input, where the network has no dropout of its own.
        self.head_dropout = HEAD_DROPOUT if self.method.dropout and cfg.drop_rate == 0 else 0.0
        # The method's loss (bench.methods): ISDA's statistics, or a plugin's state, live in it.
        self.crit: nn.Module = create_loss(self.method.loss, self.info.num_classes, self.model.num_features,
                                           dict(cfg.params)).to(self.device)
        if self.world > 1 and any(True for _ in self.crit.parameters()):
            raise ConfigError("method", cfg.method, "a method whose loss has no trainable parameters in a "
                              "multi-process run (they would not be averaged over the processes)")
        # Only a loss that merges the global batch itself (ISDA under global sync) is told its size.
        self.pad_to = bool(getattr(self.crit, "accepts_pad_to", False))
        # Compiled, the whole forward with the ISDA update and loss is one graph (and its backward
        # another): on a GPU whose CPU launches kernels slowly that is what removes ISDA's op cost.
        if cfg.compile != "off":
            # Graphs of earlier runs in this process (perf accuracy, launch --cluster debug) sit under
            # the same code object; past dynamo's recompile limit it would silently run eagerly.
            torch._dynamo.reset()
        self.loss_fn = compiled(self._loss, cfg.compile)
        self.cudagraphs = cfg.compile in CUDA_GRAPH_MODES and self.device.type == "cuda"
        if self.cudagraphs:
            static_addresses(self.model, self.crit)
        self.ddp: nn.Module | None = None
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Construction broadcasts rank 0's parameters and buffers; during training DDP
            # broadcasts the model's buffers from rank 0 before each forward (its default, and the
            # reference's), while each rank's BatchNorm normalises with its own sub-batch.
            self.ddp = DistributedDataParallel(
                _Step(self), device_ids=[self.device.index] if self.device.type == "cuda" else None)
        # Where each rank's loss state differs (ISDA under local sync), rank 0 checkpoints all of them.
        self.loss_ranks: list[dict[str, torch.Tensor]] | None = None
        # Weight decay on every parameter, as the reference does; a loss's own parameters train with them.
        params = [*self.model.parameters(), *self.crit.parameters()]
        self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                         nesterov=cfg.nesterov and cfg.momentum > 0,
                                         weight_decay=cfg.weight_decay)
        self.epoch, self.rows, self.elapsed, self.train_time = 0, [], 0.0, 0.0
        self.tracking_id: str | None = None

    # --- checkpoint ---
    def state_dict(self) -> dict[str, Any]:
        state = {"run_id": self.cfg.run_id, "epoch": self.epoch, "rows": self.rows, "elapsed": self.elapsed,
                 "train_time": self.train_time, "model": self._model_state(),
                 "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                 "tracking_id": self.tracking_id}
        if self.world > 1:
            state["world_size"] = self.world
        loss_state = self.crit.state_dict()
        if loss_state:
            # Under "isda", where checkpoints have kept ISDA's statistics since before other losses had state.
            state[self._loss_key] = loss_state
            if self.loss_ranks is not None:
                state[self._loss_key + "_ranks"] = self.loss_ranks
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def _model_state(self) -> dict[str, Any]:
        # The stock layout, BatchNorm counters included: the model loads into timm.create_model.
        steps = self.epoch * len(self.train.batch_sizes(self.world))
        return with_batchnorm_counters(self.model, self.model.state_dict(), steps)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_model_state(self.model, state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self._loss_key in state:
            ranks = state.get(self._loss_key + "_ranks")
            # Each rank its own state when the checkpoint has one per rank of this world size;
            # otherwise (another world size, global sync, one process) the shared one.
            own = ranks[self.rank] if ranks is not None and len(ranks) == self.world else state[self._loss_key]
            self.crit.load_state_dict(own)
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.rows = state["epoch"], list(state["rows"])
        self.elapsed, self.train_time = state["elapsed"], state["train_time"]
        self.tracking_id = state.get("tracking_id")

    def save(self) -> None:
        atomic_write(self.dir / "checkpoint.pt", lambda fh: torch.save(self.state_dict(), fh))
        atomic_write_text(self.dir / "metrics.csv", _metrics_csv(self.rows))

    @property
    def _loss_key(self) -> str:
        return "isda" if self.method.loss == "isda" else "loss"

    # --- one epoch ---
    def _loss(self, x: torch.Tensor, y: torch.Tensor, progress: float | torch.Tensor,
              pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            feats = self.model.features(x)
            if self.head_dropout:  # training only: evaluation calls the model, not this
                feats = F.dropout(feats, self.head_dropout, training=True)
            if self.pad_to:
                return self.crit(feats, self.model.fc, y, progress, pad_to=pad_to)
            return self.crit(feats, self.model.fc, y, progress)

    def train_epoch(self, progress: float, bar: tqdm | None) -> tuple[float, float]:
        self.model.train()
        progress_in = scalar_input(progress, self.cfg.compile, self.device)
        g = torch.Generator().manual_seed(epoch_seed(self.cfg.seed, self.epoch))
        # Metrics stay on the device and are read once per epoch: no per-step host sync.
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        wrong = torch.zeros((), device=self.device, dtype=torch.int64)
        sizes = self.train.batch_sizes(self.world)  # global batch sizes, known on every rank
        skips = cudagraph_skips()
        for b, (x, y) in zip(sizes, self.train.epoch(g, self.rank, self.world), strict=True):
            if self.cudagraphs:
                torch.compiler.cudagraph_mark_step_begin()  # the last step's outputs are no longer read
            self.optimizer.zero_grad(set_to_none=True)  # before the forward, whose peak then holds no gradients
            if self.ddp is None:
                loss, logits = self.loss_fn(x, y, progress_in)
            else:
                loss, logits = self.ddp(x, y, progress_in, distributed.max_shard(b, self.world))
            if self.ddp is not None and len(y) * self.world != b:
                # DDP averages the ranks' gradients; with unequal shards (a last batch) weighting
                # each rank's mean by its share makes that average the gradient of the global mean.
                (loss * (len(y) * self.world / b)).backward()
            else:
                loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach().double() * len(y)
            wrong += (logits.detach().argmax(1) != y).sum()
            if bar is not None:
                bar.update(1)
        declined = cudagraph_skips() - skips  # graphs are compiled in a run's first steps
        if self.cudagraphs and self.main and declined:
            print(f"warning: torch.compile declined CUDA graphs for {declined} graph(s) of this "
                  f"run (compile={self.cfg.compile}): they run at eager launch cost (TORCH_LOGS=cudagraphs says why)",
                  file=sys.stderr)
        n = sum(sizes)
        if self.world > 1:
            return self._global_means(loss_sum, wrong, n)
        return float(loss_sum) / n, 100.0 * float(wrong) / n

    def _global_means(self, loss_sum: torch.Tensor, wrong: torch.Tensor, n: int) -> tuple[float, float]:
        """(mean loss, % error) over all ranks' samples; every rank gets the same numbers."""
        totals = distributed.all_reduce_sum(torch.stack([loss_sum, wrong.double()]))
        return float(totals[0]) / n, 100.0 * float(totals[1]) / n

    def _sync_state(self) -> None:
        """End of a distributed epoch: make rank 0's state every rank's, and collect local statistics.

        Parameters are equal on all ranks already (same averaged gradients, same optimizer);
        buffers are not: each rank's last forward updated its own BatchNorm running statistics.
        Sharded evaluation and the checkpoint need one model, so rank 0's buffers are broadcast.
        Under global sync the ISDA statistics are equal by construction; broadcasting them anyway
        (once an epoch) removes any drift from non-deterministic GPU reductions.
        """
        distributed.broadcast_tensors(list(self.model.buffers()))
        buffers = list(self.crit.buffers())
        if not buffers:
            return
        if getattr(self.crit, "synchronised", False):  # equal on every rank by construction
            distributed.broadcast_tensors(buffers)
            return
        import torch.distributed as dist

        # Gathered to rank 0 only, a buffer at a time: the others allocate nothing for it.
        states: list[dict[str, torch.Tensor]] = [{} for _ in range(self.world)]
        for key, t in self.crit.state_dict().items():
            parts = [torch.empty_like(t) for _ in range(self.world)] if self.main else None
            dist.gather(t.contiguous(), parts, dst=0)
            if parts is not None:
                for r, part in enumerate(parts):
                    states[r][key] = part.cpu()
        self.loss_ranks = states if self.main else None

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float, float]:
        """(mean test loss, % top-1 error, % top-5 error) over the whole test set."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        wrong = torch.zeros((), device=self.device, dtype=torch.int64)
        wrong5 = torch.zeros((), device=self.device, dtype=torch.int64)
        k = min(5, self.info.num_classes)
        # Sharded like training: each rank evaluates its slice of every test batch.
        for x, y in self.test.epoch(None, self.rank, self.world):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                logits = self.model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            wrong += (logits.argmax(1) != y).sum()
            wrong5 += (logits.topk(k, 1).indices != y[:, None]).all(1).sum()
        n = self.test.num_samples
        if self.world > 1:
            loss, err = self._global_means(loss_sum, wrong, n)
            return loss, err, self._global_means(loss_sum, wrong5, n)[1]
        return float(loss_sum) / n, 100.0 * float(wrong) / n, 100.0 * float(wrong5) / n

    def step_epoch(self, bar: tqdm | None = None) -> dict[str, float]:
        cfg = self.cfg
        lr = lr_at(self.epoch, lr=cfg.lr, epochs=cfg.epochs, schedule=cfg.schedule, milestones=cfg.milestones,
                   gamma=cfg.gamma, schedule_offset=cfg.schedule_offset)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        progress = self.epoch / cfg.epochs
        strength = getattr(self.crit, "strength", None)
        lam = float(strength(progress)) if strength is not None else 0.0
        # Rank r seeds epoch_seed·world + r (one process: the single-process seed), so dropout and
        # per-image transforms differ between ranks; the data order comes from its own generator.
        torch.manual_seed(epoch_seed(cfg.seed, self.epoch) * self.world + self.rank)
        start = time.perf_counter()
        train_loss, train_error = self.train_epoch(progress, bar)
        if self.world > 1:
            self._sync_state()
        train_s = time.perf_counter() - start
        self.train_time += train_s
        self.last_images_per_s = self.train.num_samples / train_s if train_s > 0 else 0.0
        test_loss, test_error, test_top5_error = self.evaluate()
        seconds = time.perf_counter() - start
        self.elapsed += seconds
        row = {"epoch": self.epoch, "lr": lr, "lambda": lam, "train_loss": train_loss, "train_error": train_error,
               "test_loss": test_loss, "test_error": test_error, "epoch_time_s": seconds,
               "test_top5_error": test_top5_error}  # in result.json (ImageNet's table), not metrics.csv
        self.rows.append(row)
        self.epoch += 1
        return row


def _final_and_last10(values: list[Any]) -> tuple[float | None, float | None]:
    """Last value and mean of the last 10, each None unless every value it uses is a finite number."""
    def ok(v: Any) -> bool:
        return isinstance(v, float) and math.isfinite(v)

    last = values[-10:]
    final = values[-1] if values and ok(values[-1]) else None
    return final, (sum(last) / len(last) if last and all(map(ok, last)) else None)


def summarise(cfg: RunConfig, run: Run, status: str, **extra: Any) -> dict[str, Any]:
    # A diverged run's errors are those of a broken network: no number to report.
    rows = run.rows if status != "diverged" else []
    errors = [r["test_error"] for r in rows]
    finite = [e for e in errors if math.isfinite(e)]
    final, last10 = _final_and_last10(errors)
    final5, last10_5 = _final_and_last10([r.get("test_top5_error") for r in rows])
    result = {
        "run_id": cfg.run_id, "sweep": cfg.sweep, "dataset": cfg.dataset, "arch": cfg.arch,
        "method": cfg.method, **{k: cfg.param(k) for k in ID_PARAMS}, **dict(cfg.params), "world_size": run.world,
        # Only when set: result.json of a run on the whole training set keeps its keys.
        **({"train_size": cfg.train_size} if cfg.train_size is not None else {}),
        "seed": cfg.seed, "epochs": cfg.epochs, "epochs_done": len(run.rows), "status": status,
        "final_test_error": final, "best_test_error": min(finite) if finite else None,
        "last10_test_error": last10, "final_top5_test_error": final5, "last10_top5_test_error": last10_5,
        "wall_time_s": run.elapsed,
        "images_per_s": (len(run.rows) * run.train.num_samples / run.train_time) if run.train_time else None,
        "device": device_name(run.device), "precision": "bf16" if run.bf16 else "fp32",
        "num_params": sum(p.numel() for p in run.model.parameters()),
        "torch_version": torch.__version__, "git_sha": git_sha(), "versions": versions(),
    }
    if plugins.loaded():
        result["plugins"] = plugins.loaded()
    result.update(extra)
    return result


def run(cfg: RunConfig, run_dir: Path | str, *, progress: bool | None = None, tracker: Any = None,
        locked: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir``, resuming from its checkpoint; returns result.json's content.

    A run whose result.json exists is not trained again. ``progress=None`` shows bars only on a terminal.
    In a process group every rank calls this with the same arguments; rank 0 alone writes and tracks.
    Rank 0 holds run_dir's lock while it trains (``locked``: its caller holds it already), so a second
    process started on the same folder is refused instead of writing into it too.
    """
    run_dir = Path(run_dir)
    rank, world = distributed.rank_and_world()
    if cfg.world_size != world:  # every rank sees the same numbers, so every rank stops here
        raise ConfigError("world_size", cfg.world_size,
                          f"{world}, the number of processes this run was started with")
    check_run_dir(run_dir, cfg.run_id, "out")  # run_dir is shared by the ranks, so they all stop here too
    main = rank == 0
    done = run_dir / "result.json"
    # Rank 0 decides and tells the others, so that no rank trains alone or waits for one that left.
    finished = distributed.broadcast_object(json.loads(done.read_text()) if main and done.exists() else None)
    if finished is not None:
        return finished  # type: ignore[return-value]
    with deterministic_if_compiled_on_cpu(cfg.compile, pick_device(cfg.device)):
        return _train(cfg, run_dir, progress, tracker, rank, locked)


def _train(cfg: RunConfig, run_dir: Path, progress: bool | None, tracker: Any, rank: int,
           locked: bool) -> dict[str, Any]:
    r = Run(cfg, run_dir)  # loads data and builds the model: bad input fails here, before any file
    lock = RunLock(run_dir) if rank == 0 and not locked else None
    if rank == 0:
        make_dir(run_dir, "out")
    busy = lock is not None and not lock.acquire()
    if distributed.broadcast_object(busy):  # every rank stops, not rank 0 alone
        raise ConfigError("out", str(run_dir), f"a run folder no other process is training (one holds its "
                          f"{LOCK_FILE}: wait for it, or stop it)")
    try:
        return _train_locked(cfg, r, run_dir, progress, tracker, rank)
    finally:
        if lock is not None:
            lock.release()


def _train_locked(cfg: RunConfig, r: Run, run_dir: Path, progress: bool | None, tracker: Any,
                  rank: int) -> dict[str, Any]:
    main = rank == 0
    done = run_dir / "result.json"
    if main:
        atomic_write_text(run_dir / "config.yaml",
                          yaml.safe_dump({"run_id": cfg.run_id, **cfg.to_dict()}, sort_keys=False))
    _resume(r, run_dir / "checkpoint.pt", cfg.run_id)
    if not main:
        tracker = None
    elif tracker is None:
        from bench.tracking.tracker import make_tracker

        tracker = make_tracker(cfg.tracking, rank=rank)
    if tracker is not None:
        # rows: the checkpoint may be an epoch ahead of what the tracker flushed before a kill.
        r.tracking_id = tracker.start(cfg, r.tracking_id, run_dir, rows=r.rows)
    disable = (None if progress is None else not progress) if main else True
    try:
        with tqdm(total=cfg.epochs, initial=r.epoch, desc=cfg.slug, unit="ep", disable=disable,
                  file=sys.stderr) as epochs_bar:
            while r.epoch < cfg.epochs:
                with tqdm(total=len(r.train), desc=f"epoch {r.epoch}", unit="step", leave=False,
                          disable=disable, file=sys.stderr) as bar:
                    row = r.step_epoch(bar)
                if tracker is not None:
                    tracker.log({**row, "images_per_s": r.last_images_per_s})
                # Losses are summed over ranks: every rank takes the same branch here.
                bad = [k for k in ("train_loss", "test_loss") if not math.isfinite(row[k])]
                if bad:
                    result = summarise(cfg, r, "diverged", failed_epoch=row["epoch"],
                                       reason=f"non-finite {bad[0]} ({row[bad[0]]}) in epoch {row['epoch']}")
                    break
                if main:
                    r.save()
                epochs_bar.update(1)
                epochs_bar.set_postfix(test_err=f"{row['test_error']:.2f}%", loss=f"{row['train_loss']:.3f}")
            else:
                result = summarise(cfg, r, "completed")
    except Exception as exc:
        # A rank's exception reaches the others as a collective's error or timeout; rank 0 records it.
        failed = summarise(cfg, r, "failed", failed_epoch=r.epoch, reason=f"{type(exc).__name__}: {exc}",
                           traceback=traceback.format_exc(limit=8))
        if main:
            atomic_write_json(done, failed)
        if tracker is not None:
            tracker.finish(failed)
        raise
    if main:
        # Again: a kill between the last checkpoint and its metrics.csv resumes straight to here.
        atomic_write_text(run_dir / "metrics.csv", _metrics_csv(r.rows))
        atomic_write_json(done, result)
    if tracker is not None:
        tracker.finish(result)
    return result


def _resume(r: Run, path: Path, run_id: str) -> None:
    """Load the run's checkpoint into ``r`` if there is a sound one; in a group, on every rank.

    Rank 0 checks it (and sets a damaged one aside); the others then read the same file, which
    needs run_dir on a filesystem all ranks share (as a requeued job needs anyway).
    """
    if r.world == 1:
        state = _load_checkpoint(path, run_id)
        if state is not None:
            r.load_state_dict(state)
        return
    state = _load_checkpoint(path, run_id) if r.main else None
    if distributed.broadcast_object(state is not None):
        if state is None:
            state = torch.load(path, map_location="cpu", weights_only=True)
        r.load_state_dict(state)
