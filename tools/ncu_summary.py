#!/usr/bin/env python3
"""ncu_summary.py - the last decode step's kernels of an Nsight Compute CSV (ncu --csv --page raw
--metrics gpu__time_duration.sum, as tools/ncu_decode.sh runs it), summed by kernel name and grid,
largest first, with each one's share of the step's kernel time.

The last step is the kernels after the second-to-last launch of the sampler (dec_sample ends
every step); with fewer than two, every kernel counts. ncu prints durations with thousands
separators ("1,234"): they are read as numbers.

usage: tools/ncu_summary.py FILE.csv
"""
import collections
import csv
import sys


def summary(lines):
    start = [i for i, l in enumerate(lines) if l.startswith('"ID"')]
    if not start:
        raise ValueError("no kernel rows (no header line starting with \"ID\")")
    rows = list(csv.reader(lines[start[0]:]))
    hdr = rows[0]
    # the second row holds the units; ncu's own messages are not rows of the header's width
    rows = [r for r in rows[2:] if len(r) == len(hdr)]
    k, t, g = hdr.index("Kernel Name"), hdr.index("gpu__time_duration.sum"), hdr.index("Grid Size")
    ks = [(r[k][:48], float(r[t].replace(",", "")), r[g]) for r in rows]
    ends = [i for i, x in enumerate(ks) if x[0].startswith("dec_sample")]
    last = ks[ends[-2] + 1:] if len(ends) >= 2 else ks
    agg = collections.OrderedDict()
    for name, ns, grid in last:
        a = agg.setdefault((name, grid), [0.0, 0])
        a[0] += ns
        a[1] += 1
    tot = sum(x[1] for x in last)
    out = ["%-48s %-14s %6s %10s %9s %6s" % ("kernel (last step)", "grid", "calls", "us each", "us", "share")]
    for (name, grid), (ns, c) in sorted(agg.items(), key=lambda x: -x[1][0]):
        out.append("%-48s %-14s %6d %10.2f %9.1f %5.1f%%" % (name, grid, c, ns / c / 1e3, ns / 1e3,
                                                             100 * ns / (tot or 1)))
    out.append("%d kernels, %.1f us in all (each timed alone)" % (len(last), tot / 1e3))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ncu_summary.py FILE.csv")
    try:
        with open(sys.argv[1]) as f:
            print("\n".join(summary(f.read().splitlines())))
    except (OSError, ValueError) as e:
        sys.exit("ncu_summary.py: %s: %s" % (sys.argv[1], e))


if __name__ == "__main__":
    main()
