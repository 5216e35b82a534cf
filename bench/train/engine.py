"""Run: one run's data, model, loss and optimizer, and how it trains and evaluates an epoch.

On CPU a seeded run is bit-identical when repeated and after a kill and resume: every epoch reseeds torch
from (seed, epoch), and the checkpoint (``state_dict``) restores the rest.

Multi-process (DDP) runs: ``cfg.world_size`` processes, each inside an initialised process group
(bench.train.distributed.init_from_env). ``cfg.batch_size`` is the global batch, split across ranks;
the model is wrapped in DistributedDataParallel (BatchNorm per rank, as in the reference);
metrics are summed over ranks, so every rank sees the global numbers; evaluation is sharded the
same way. At each epoch's end rank 0's buffers (BatchNorm running statistics, and the ISDA statistics
under global sync) are broadcast, so the checkpoint is every rank's state. With one process nothing of
this runs and the results are those of the single-process code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from bench.common.errors import ConfigError
from bench.data.batches import make_batches
from bench.data.sharding import max_shard
from bench.data.sources import load_dataset
from bench.experiment.archs import ARCHS
from bench.experiment.recipes import lr_at
from bench.experiment.runconfig import RunConfig
from bench.methods import create_loss, parse_method
from bench.methods.contract import check_output
from bench.models import create_model
from bench.rundir.metrics import write_metrics
from bench.train import distributed
from bench.train.checkpoint import write_checkpoint
from bench.train.device import pick_device, uses_bf16
from bench.train.fastpath import (
    CUDA_GRAPH_MODES,
    compiled,
    cuda_settings,
    cudagraph_skips,
    drop_batchnorm_counters,
    load_model_state,
    scalar_input,
    static_addresses,
    with_batchnorm_counters,
)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch + 1


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
        # The config says how many processes train the run (bench.train.trainer.run checks the group agrees).
        self.rank, self.world = distributed.rank_and_world()[0], cfg.world_size
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
        randaugment = None
        if cfg.randaugment_n is not None and cfg.randaugment_m is not None:  # resolve sets both or neither
            randaugment = (cfg.randaugment_n, cfg.randaugment_m)
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
        self.rows: list[dict[str, float]] = []
        self.epoch, self.elapsed, self.train_time = 0, 0.0, 0.0
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
        """The epoch's checkpoint, then metrics.csv with its row (rank 0 only)."""
        write_checkpoint(self.dir, self.state_dict())
        write_metrics(self.dir, self.rows)

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
                out = self.loss_fn(x, y, progress_in)
            else:
                out = self.ddp(x, y, progress_in, max_shard(b, self.world))
            # Shapes only (no host sync): a plugin's broken result is one line, not a torch traceback
            # or an epoch of meaningless numbers.
            loss, logits = check_output(self.method.loss, out, len(y), self.info.num_classes)
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
        follow = getattr(self.crit, "follow_lr", None)  # a loss with a rate of its own (Center loss's centres)
        if follow is not None:
            follow(lr / cfg.lr)
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
