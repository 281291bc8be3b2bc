#!/usr/bin/env bash
# vramtop --once --json against nvidia-smi on a machine with a real NVIDIA GPU (no downloads).
#
# Starts a parent that holds a CUDA context and PARENT_MIB, and WORKERS children titled like vLLM's
# TP workers that each hold CHILD_MIB (bench/real_gpu_check.py, ctypes on libcuda.so.1), then
# compares vramtop's GPU figures, process list and per-process memory with nvidia-smi's field by
# field, and checks that the parent and its workers are one instance. One PASS/FAIL line per check;
# exits non-zero on any mismatch. Then, the processes still up, for the eye: `vramtop --once` and `vramtop fit`
# on this node as a user sees them, what a tick costs on the real driver (the `speed` lines), and what a
# PyTorch process holds beyond its tensors (the `context` line). Needs vramtop importable (the repository's
# .venv, or installed).
#
#   bench/real_gpu_check.sh [WORKERS] [PARENT_MIB] [CHILD_MIB]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
workers="${1:-2}"
parent_mib="${2:-256}"
child_mib="${3:-1024}"
py="$repo/.venv/bin/python"
[[ -x "$py" ]] || py="$(command -v python3)"
export PYTHONPATH="$repo/tui${PYTHONPATH:+:$PYTHONPATH}"

command -v nvidia-smi >/dev/null || { echo "FAIL  setup: nvidia-smi not found"; exit 2; }
gpus="$(nvidia-smi --query-gpu=index --format=csv,noheader | wc -l)"
[[ "$gpus" -ge 1 ]] || { echo "FAIL  setup: nvidia-smi lists no GPU"; exit 2; }

work="$(mktemp -d)"
holder=""
cleanup() {
    if [[ -n "$holder" ]]; then
        kill -- "-$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The holder leads its own process group, so the cleanup ends it and its workers together.
setsid "$py" "$here/real_gpu_check.py" hold "$parent_mib" "$child_mib" "$workers" "$gpus" >"$work/held.json" &
holder=$!
for _ in $(seq 1 240); do
    [[ -s "$work/held.json" ]] && break
    kill -0 "$holder" 2>/dev/null || { echo "FAIL  setup: the CUDA processes did not start"; exit 2; }
    sleep 0.5
done
[[ -s "$work/held.json" ]] || { echo "FAIL  setup: the CUDA processes took over 120 s"; exit 2; }
echo "started: $(cat "$work/held.json")"
sleep 2  # let the driver's figures settle after the last allocation

# Nothing allocates or frees between these three reads.
timeout 60 "$py" -m vramtop --once --json --no-ray >"$work/vramtop.json"
nvidia-smi --query-gpu=index,memory.total,memory.used,memory.free,memory.reserved \
    --format=csv,noheader,nounits >"$work/gpus.csv"
nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits >"$work/apps.csv"

status=0
"$py" "$here/real_gpu_check.py" compare "$work/vramtop.json" "$work/gpus.csv" "$work/apps.csv" "$work/held.json" \
    || status=$?
echo "--- vramtop --once"
timeout 60 "$py" -m vramtop --once --no-ray || echo "vramtop --once exited $?"
echo "--- vramtop fit Qwen/Qwen2.5-7B-Instruct"
timeout 60 "$py" -m vramtop fit Qwen/Qwen2.5-7B-Instruct || echo "vramtop fit exited $?"
echo "---"
timeout 300 "$py" "$here/real_gpu_check.py" speed || echo "speed exited $?"
timeout 120 "$py" "$here/real_gpu_check.py" context || echo "context exited $?"
exit "$status"
