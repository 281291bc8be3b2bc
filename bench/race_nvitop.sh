#!/usr/bin/env bash
# vramtop against nvitop, live side by side in tmux on the stand-in NVML node (see race_nvitop.py).
# nvitop goes into a venv of its own (bench/.venv-race, ignored by git), never vramtop's dependencies.
# Usage: bench/race_nvitop.sh [--seconds 25] [--nodes 8x64,16x512] [--no-once]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/bench/.venv-race"
if [ ! -x "$venv/bin/nvitop" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q nvitop
fi
command -v tmux >/dev/null || { echo "race_nvitop: tmux is needed (apt-get install -y tmux)" >&2; exit 2; }
exec "$root/.venv/bin/python" "$root/bench/race_nvitop.py" --nvitop "$venv/bin/nvitop" "$@"
