#!/usr/bin/env bash
# The GPU checks and benchmarks behind the README's performance section, in one go:
#   scripts/gpu-bench.sh OUT_DIR [all | eager | pending]
# Runs the CUDA tests (one ISDA training step under torch.cuda.set_sync_debug_mode("error"), the
# compiled step as a CUDA graph, per-method peak memory), then `isda-bench perf isda | step |
# loader | epoch` and a short real training run on the GPU (eager); and what no GPU has measured
# yet (pending): the same steps, epoch and run under torch.compile with CUDA graphs, the eager
# ResNet-50 step with per-method memory, and final accuracy of the fast path against the plain one.
# Uses `isda-bench` if installed, else `python3 -m bench.cli` from this checkout.
# Through the device tool (few files come back, 10 minutes a call): run
#   timeout 570 scripts/gpu-bench.sh /tmp/gb pending; tar czf $OUT/gb.tgz -C /tmp gb
# and the part that finished comes back even when the time runs out.
set -uo pipefail
out=$(realpath -m "${1:-results/perf}")  # absolute: the script moves to the checkout below
part=${2:-all}
mkdir -p "$out"
cd "$(dirname "$0")/.."
if command -v isda-bench >/dev/null 2>&1; then ib=(isda-bench); else ib=(python3 -m bench.cli); export PYTHONPATH=$PWD; fi
export PYTHONUNBUFFERED=1
# A graph that torch declines to replay as a CUDA graph is counted in the tables (cudagraph_skips);
# this puts the reason in the log too, so that no second device session is needed to find it.
export TORCH_LOGS=${TORCH_LOGS:-cudagraphs}
step() { echo "== $*"; local t0=$SECONDS; "$@"; echo "== rc=$? in $((SECONDS - t0)) s"; }
{
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision, timm; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__)"
step python3 -m pytest -q -p no:cacheprovider tests/test_isda.py tests/test_perf.py -k cuda
if [ "$part" != eager ]; then
  # Most wanted first (a device session may end early): the issue-3 step targets, the issue-4
  # epoch target under CUDA graphs, then the accuracy check, then the rest. Inductor's on-disk
  # cache lets later commands reuse graphs compiled by earlier ones.
  for arch in resnet110 wrn28_10; do
    step "${ib[@]}" perf step --arch $arch --dataset cifar100 --methods ce,isda --compile reduce-overhead --out "$out"
  done
  # ResNet-50 eagerly: its ≤ 1 % target and its peak memory, counted per method since the fix.
  step "${ib[@]}" perf step --arch resnet50 --dataset imagenet --batch 256 --out "$out"
  step "${ib[@]}" perf epoch --arch resnet110 --dataset cifar100 --steps 60 --compile reduce-overhead --out "$out"
  step "${ib[@]}" perf accuracy --dataset digits --arch resnet32 --method isda --seeds 0,1,2,3,4 --epochs 15 \
    --out "$out"
  for arch in resnet110 wrn28_10; do
    step "${ib[@]}" perf step --arch $arch --dataset cifar100 --methods ce,isda --compile cudagraphs --out "$out"
  done
  step "${ib[@]}" train --dataset synthetic --arch resnet110 --method isda+cutout --epochs 3 --compile reduce-overhead \
    --out "$out/train-run-compiled"
fi
[ "$part" = pending ] && exit 0
step "${ib[@]}" perf step --arch wrn28_10 --dataset cifar100 --out "$out"
step "${ib[@]}" perf step --arch resnet110 --dataset cifar100 --out "$out"
step "${ib[@]}" perf step --arch resnet50 --dataset imagenet --batch 256 --out "$out"
step "${ib[@]}" perf isda --grid full --dtype bfloat16 --repeats 20 --out "$out"
step "${ib[@]}" perf loader --out "$out"
step "${ib[@]}" perf epoch --arch resnet110 --dataset cifar100 --steps 60 --out "$out"
step "${ib[@]}" perf epoch --arch wrn28_10 --dataset cifar100 --steps 60 --out "$out"
step "${ib[@]}" train --dataset synthetic --arch resnet110 --method isda+cutout --epochs 3 --out "$out/train-run"
} 2>&1 | tee "$out/gpu-bench.log"
