#!/usr/bin/env bash
# Runs every benchmark under bench/; results go to stdout (copy them into bench/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
for script in bench/bench_*.py; do
  echo "== $script"
  "$BIN/python" "$script"
done
