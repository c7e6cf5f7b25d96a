#!/usr/bin/env bash
# Issue #17's checks on a lent GPU, as one command that fits one device call (under 600 s) and 15 minutes of
# device time: the CUDA tests, then benchmarks/train_step.py on a Llama-3.2-1B-shaped model (LoRA, QLoRA, full
# fine-tuning; 8 × 2048 tokens, bf16) and benchmarks/nf4_dequant.py. Logs go to $OUT (they come back).
# First, here: bash benchmarks/gpu_prepare.sh. Then the device tool's run with carry [".gpu"] and the command
#   bash benchmarks/gpu_session.sh
# A dry run on the CPU (plumbing only: tiny sizes, nothing is measured): DEVICE=cpu bash benchmarks/gpu_session.sh
# (PY=/path/to/python: another interpreter, e.g. one with the image's PyTorch 2.11 rather than loralab's pin.)
# Steps run by priority within BUDGET (570 s): tests, LoRA, QLoRA, full, NF4, DoRA; one skipped for time is named in
# the output. A second call, if device time is left: PART=2 bash benchmarks/gpu_session.sh (DoRA's step only).
set -u
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-/tmp/gpu_session_out}
mkdir -p "$OUT"
[ -d .gpu/whl ] || { echo "no .gpu/: run benchmarks/gpu_prepare.sh first, and carry .gpu"; exit 2; }
PY=${PY:-}  # the Python to run (default: the image's python3; in a dry run .venv's if there is one)
BF16=bf16   # the steps' precision and weights (a dry run on a CPU that emulates bf16 takes fp32: minutes a step else)
if [ "$DEVICE" = cuda ]; then
    PY=${PY:-python3}
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/device.txt" 2>&1
    SIZE="--model llama-1b --batch 8 --seq-len 2048 --rounds 1 --steps 3"
    DEQUANT="--reps 30 --warmup 3"
else  # dry run: one decoder layer, short rows
    [ -z "$PY" ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
    PY=${PY:-python3}
    grep -q avx512_bf16 /proc/cpuinfo || BF16=fp32
    echo "cpu (dry run)" > "$OUT/device.txt"
    SIZE="--model llama-1b --layers 1 --batch 1 --seq-len 64 --rounds 1 --steps 1"
    DEQUANT="--quick"
fi
# the wheels into a folder of their own, first on the path; a compiled wheel only if it is for this Python
SITE=$(mktemp -d)
TAG=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
WHEELS=$(ls .gpu/whl/*.whl | grep -E -- "-(py3-none|$TAG-$TAG)-")
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check --target "$SITE" $WHEELS || exit 1
export PYTHONPATH="$PWD/src:$PWD/benchmarks:$SITE" LORALAB_CACHE="$PWD/.gpu/cache" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
"$PY" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__)" | tee -a "$OUT/device.txt"

BUDGET=${BUDGET:-570}  # seconds for this whole script (one device call runs 600 at most); a step gets what is left
step() {  # step NAME SECONDS COMMAND...: runs it under a time limit, its output to $OUT/NAME.log and the reply
    local name=$1 limit=$2 left=$(( BUDGET - SECONDS ))
    shift 2
    if [ "$left" -lt 30 ]; then
        echo "=== $name: skipped, out of time (${left}s left of ${BUDGET}s)"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "=== $name ($(date +%T), limit ${limit}s)"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    echo "=== $name: exit $?"
    grep -v -E "Warning|warn\(|^\s*$" "$OUT/$name.log" | tail -n 25
}
train_step() {  # train_step METHOD: the step benchmark at this call's size
    step "train_step_$1" 110 "$PY" benchmarks/train_step.py --device "$DEVICE" $SIZE --precision $BF16 --weights $BF16 --method "$1"
}

PART=${PART:-1}
if [ "$PART" = 1 ]; then  # by priority: the later ones are skipped if the call's time runs out
    step tests 150 "$PY" -m pytest -q -rs tests/train/test_cuda_paths.py tests/lora/test_fused_linear.py tests/lora/test_fused_dora.py
    train_step lora
    train_step qlora
    train_step full
    step nf4_dequant 60 "$PY" benchmarks/nf4_dequant.py --device "$DEVICE" --dtype $BF16 $DEQUANT
    train_step dora
else  # what part 1 had no time for
    train_step dora
fi
rm -rf "$SITE"
