#!/usr/bin/env bash
# The GPU runs behind the cuda rows in results/, as prepared calls (a lent GPU is rare and short).
# Each job stops at its time limit; what it wrote stays.
#
#   DEEPNETS_DATA=... benchmarks/gpu_runs.sh lm OUT_DIR [LIMIT_SECONDS]
#       lstm-ptb medium (the paper's setting) and medium-tied, rnn-ptb small, beside each other
#       on one GPU; at the same time the convnet-cifar10 epoch sweep; then convnet-cifar10 alone
#       on the GPU for a clean throughput figure.
#   DEEPNETS_DATA=... benchmarks/gpu_runs.sh convnets OUT_DIR [LIMIT_SECONDS]
#       convnet-cifar10 with cutout: an epoch sweep (seed 0) beside seeds 1 and 2 of the 48-epoch
#       budget, and lenet5-mnist `distorted` over 3 seeds; then the shortest budget that reached
#       92% is trained again alone, for its time and throughput.
set -u
job=${1:?usage: gpu_runs.sh lm|convnets OUT_DIR [LIMIT_SECONDS]}
out=${2:?usage: gpu_runs.sh lm|convnets OUT_DIR [LIMIT_SECONDS]}
limit=${3:-500}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
gpu_flags=(--set amp=true --set channels_last=true --device cuda)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >"$out/gpu.txt"

if [ "$job" = lm ]; then
    timeout "$limit" python3 -m deepnets bench lstm-ptb --preset medium --device cuda --seeds 1 --quiet >"$out/lstm-medium.log" 2>&1 &
    timeout "$limit" python3 -m deepnets bench lstm-ptb --preset medium-tied --device cuda --seeds 1 --quiet >"$out/lstm-medium-tied.log" 2>&1 &
    timeout "$limit" python3 -m deepnets bench rnn-ptb --device cuda --seeds 1 --quiet >"$out/rnn-ptb.log" 2>&1 &
    timeout $((limit - 120)) python3 benchmarks/convnet_cifar10_epochs.py --epochs 8,12,16,24 \
        "${gpu_flags[@]}" --runs runs/bench-epochs --json "$out/cifar-sweep.json" >"$out/cifar-sweep.log" 2>&1
    wait
    timeout 100 python3 benchmarks/convnet_cifar10_epochs.py --epochs 24 "${gpu_flags[@]}" \
        --runs runs/bench-alone --no-rows --json "$out/cifar-alone.json" >"$out/cifar-alone.log" 2>&1
elif [ "$job" = convnets ]; then
    # decode the JPEG copy once, into the cache every job below reads
    python3 -c "from deepnets.data.cifar10 import load_cifar10; load_cifar10('auto', 0)"
    OMP_NUM_THREADS=4 timeout "$limit" python3 -m deepnets bench lenet5-mnist --preset distorted \
        --device cuda --seeds 3 --quiet >"$out/lenet5-distorted.log" 2>&1 &
    OMP_NUM_THREADS=4 timeout "$limit" python3 -m deepnets bench convnet-cifar10 --set cutout=8 \
        --set epochs=48 "${gpu_flags[@]}" --seed 1 --seeds 2 --quiet >"$out/cifar-seeds.log" 2>&1 &
    OMP_NUM_THREADS=4 timeout "$limit" python3 benchmarks/convnet_cifar10_epochs.py \
        --epochs 24,32,48,64 --set cutout=8 "${gpu_flags[@]}" --runs runs/bench-epochs \
        --json "$out/cifar-sweep.json" >"$out/cifar-sweep.log" 2>&1
    wait
    epochs=$(python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['time_to_target']; print(b['epochs'] if b else 48)" "$out/cifar-sweep.json" 2>/dev/null || echo 48)
    timeout 100 python3 benchmarks/convnet_cifar10_epochs.py --epochs "$epochs" --set cutout=8 \
        "${gpu_flags[@]}" --runs runs/bench-alone --no-rows --json "$out/cifar-alone.json" >"$out/cifar-alone.log" 2>&1
else
    echo "unknown job $job (lm or convnets)" >&2
    exit 2
fi
