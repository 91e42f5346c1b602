#!/usr/bin/env bash
# The GPU runs behind the cuda rows in results/, in one prepared call (a lent GPU is rare and
# short): lstm-ptb medium (the paper's setting) and medium-tied, rnn-ptb small, beside each other
# on one GPU; at the same time the convnet-cifar10 epoch sweep; then convnet-cifar10 alone on the
# GPU for a clean throughput figure. Each job stops at its time limit; what it wrote stays.
#
#   DEEPNETS_DATA=... benchmarks/gpu_runs.sh OUT_DIR [LIMIT_SECONDS]
set -u
out=${1:?usage: gpu_runs.sh OUT_DIR [LIMIT_SECONDS]}
limit=${2:-500}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
gpu_flags=(--set amp=true --set channels_last=true --device cuda)

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$out/gpu.txt"
timeout "$limit" python3 -m deepnets bench lstm-ptb --preset medium --device cuda --seeds 1 --quiet >"$out/lstm-medium.log" 2>&1 &
timeout "$limit" python3 -m deepnets bench lstm-ptb --preset medium-tied --device cuda --seeds 1 --quiet >"$out/lstm-medium-tied.log" 2>&1 &
timeout "$limit" python3 -m deepnets bench rnn-ptb --device cuda --seeds 1 --quiet >"$out/rnn-ptb.log" 2>&1 &
timeout $((limit - 120)) python3 benchmarks/convnet_cifar10_epochs.py --epochs 8,12,16,24 \
    "${gpu_flags[@]}" --runs runs/bench-epochs --json "$out/cifar-sweep.json" >"$out/cifar-sweep.log" 2>&1
wait
timeout 100 python3 benchmarks/convnet_cifar10_epochs.py --epochs 24 "${gpu_flags[@]}" \
    --runs runs/bench-alone --no-rows --json "$out/cifar-alone.json" >"$out/cifar-alone.log" 2>&1
