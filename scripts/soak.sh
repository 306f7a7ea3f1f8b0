#!/usr/bin/env bash
# `make soak`: the full soak (bench/soak.py) — the whole SOC under load through every fault.
# Root is needed for the network partition (ip netns) and the full disk (tmpfs); without it those
# faults are skipped and the table says why. Extra arguments go to bench/soak.py, e.g.
#   bash scripts/soak.sh --minutes 30 --agents 8 --rate 200 --store elasticsearch
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$BIN/python" bench/soak.py "$@"
