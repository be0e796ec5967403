#!/bin/sh
# ncu_decode.sh - where a GPU decode step's time goes: tools/decode_step.c under Nsight Compute
# (every kernel of the graph replays, one metric: gpu__time_duration), then the last step's
# kernels summed by name and grid, largest first (tools/ncu_summary.py; tests/ncu_summary.sh).
# ncu times each kernel alone (serialized, no launch overlap), with the caches left warm as in
# back-to-back decode steps (--cache-control none: with them flushed, a kernel of a few loads
# reads cold memory and looks 2-3x slower than it runs); the shares are what it is for.
# Usage: tools/ncu_decode.sh MECHANISM BATCH CONTEXT [FUSED]     (e.g. gqa 1 512)
#   NCU=path (default: ncu on PATH, else /usr/local/cuda/bin/ncu), OUT=dir (default build/ncu)
set -u
[ $# -ge 3 ] || { echo "usage: $0 MECHANISM BATCH CONTEXT [FUSED]" >&2; exit 2; }
ncu=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
out=${OUT:-build/ncu}
mkdir -p "$out" && make -s build/decode_step || exit 2
csv="$out/ncu_$1_$2_$3.csv"
"$ncu" --graph-profiling node --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --page raw \
    build/decode_step "$1" "$2" "$3" 5 "${4:-0}" > "$csv" || { echo "ncu failed (log: $csv)" >&2; exit 1; }
python3 tools/ncu_summary.py "$csv"
