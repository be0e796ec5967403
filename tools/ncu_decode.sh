#!/bin/sh
# ncu_decode.sh - where a GPU decode step's time goes: tools/decode_step.c under Nsight Compute
# (every kernel of the graph replays, one metric: gpu__time_duration), then the last step's
# kernels summed by name and grid, largest first. ncu times each kernel alone, with the caches
# flushed before it, so the sum exceeds the step's real time (the graph overlaps launch gaps);
# the shares are what it is for.
# Usage: tools/ncu_decode.sh MECHANISM BATCH CONTEXT [FUSED]     (e.g. gqa 1 512)
#   NCU=path (default: ncu on PATH, else /usr/local/cuda/bin/ncu), OUT=dir (default build/ncu)
set -u
[ $# -ge 3 ] || { echo "usage: $0 MECHANISM BATCH CONTEXT [FUSED]" >&2; exit 2; }
ncu=${NCU:-$(command -v ncu || echo /usr/local/cuda/bin/ncu)}
out=${OUT:-build/ncu}
mkdir -p "$out" && make -s build/decode_step || exit 2
csv="$out/ncu_$1_$2_$3.csv"
"$ncu" --graph-profiling node --clock-control none --metrics gpu__time_duration.sum --csv --page raw \
    build/decode_step "$1" "$2" "$3" 5 "${4:-0}" > "$csv" || { echo "ncu failed (log: $csv)" >&2; exit 1; }
python3 - "$csv" <<'PY'
import csv, sys, collections
lines = open(sys.argv[1]).read().splitlines()
start = [i for i, l in enumerate(lines) if l.startswith('"ID"')]
if not start: sys.exit("no kernel rows in " + sys.argv[1])
rows = list(csv.reader(lines[start[0]:]))
hdr = rows[0]; rows = [r for r in rows[2:] if len(r) == len(hdr)]
k, t, g = hdr.index("Kernel Name"), hdr.index("gpu__time_duration.sum"), hdr.index("Grid Size")
ks = [(r[k][:48], float(r[t].replace(",", "")), r[g]) for r in rows]
# the last step: the kernels after the second-to-last sampler launch (dec_sample ends a step)
ends = [i for i, x in enumerate(ks) if x[0].startswith("dec_sample")]
last = ks[ends[-2] + 1:] if len(ends) >= 2 else ks
agg = collections.OrderedDict()
for name, ns, grid in last:
    a = agg.setdefault((name, grid), [0.0, 0]); a[0] += ns; a[1] += 1
tot = sum(x[1] for x in last)
print("%-48s %-14s %6s %10s %9s %6s" % ("kernel (last step)", "grid", "calls", "us each", "us", "share"))
for (name, grid), (ns, c) in sorted(agg.items(), key=lambda x: -x[1][0]):
    print("%-48s %-14s %6d %10.2f %9.1f %5.1f%%" % (name, grid, c, ns / c / 1e3, ns / 1e3, 100 * ns / tot))
print("%d kernels, %.1f us in all (each alone, caches flushed)" % (len(last), tot / 1e3))
PY
