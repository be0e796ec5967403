#!/usr/bin/env python3
"""tools/readme_figures.py - every figure in the README's tables is one that docs/benchmarks.md
records (the rule: a figure the README states comes from a recorded, dated, re-runnable command).

usage: python3 tools/readme_figures.py [README.md [docs/benchmarks.md]]

A figure is a number of three or more significant characters in a row of a README table
(tables whose header names a `paper` or a `file` hold no figures and are skipped). It is found
when some number of benchmarks.md rounds to it at the figure's own precision (a tie either
way): as it stands, or
for `K` in thousands, for `MB` / `GB` from bytes (10^6 / 10^9 or 2^20 / 2^30) or from MB / GB.
Prints one line per figure not found (README line, the figure, the row) and a summary; the exit
status is 1 when one is missing, 2 on a file that cannot be read."""
import re
import sys

NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s*(K|MB|GB)\b)?")


def numbers(text):
    return [float(m.group(1).replace(",", "")) for m in NUM.finditer(text)]


def figures(lines):
    """(line number, figure text, value, decimals, unit, row) of every figure in figure tables"""
    out, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].startswith("|"):
            j += 1
        header = lines[i].lower()
        if "paper" not in header and "| file" not in header:
            for k in range(i + 2, j):  # past the header and the --- row
                for m in NUM.finditer(lines[k]):
                    txt, unit = m.group(1), m.group(2) or ""
                    digits = txt.replace(",", "").replace(".", "")
                    if len(digits.lstrip("0")) < 3 and unit != "K":
                        continue  # small counts are shapes and sizes, not measurements
                    dec = len(txt.split(".")[1]) if "." in txt else 0
                    out.append((k + 1, txt + unit, float(txt.replace(",", "")), dec, unit, lines[k].strip()))
        i = j
    return out


def found(v, dec, unit, bench):
    """some recorded y rounds to v at v's decimals (a tie either way: 41.95 is 41.9 or 42.0)"""
    scales = {"": [1], "K": [1e3, 1], "MB": [1e6, 2 ** 20, 1], "GB": [1e9, 2 ** 30, 1]}[unit]
    half = 0.5 * 10 ** -dec * (1 + 1e-9)
    return any(abs(y / s - v) <= half for y in bench for s in scales)


def main(argv):
    readme = argv[1] if len(argv) > 1 else "README.md"
    bench_path = argv[2] if len(argv) > 2 else "docs/benchmarks.md"
    try:
        lines = open(readme, encoding="utf-8").read().split("\n")
        bench = numbers(open(bench_path, encoding="utf-8").read())
    except OSError as e:
        print(f"readme_figures: {e}")
        return 2
    figs = figures(lines)
    missing = [f for f in figs if not found(f[2], f[3], f[4], bench)]
    for line, txt, _, _, _, row in missing:
        print(f"{readme}:{line}: {txt} is in no number of {bench_path} (row: {row})")
    print(f"{len(figs)} figures in {readme}'s tables, {len(figs) - len(missing)} found in {bench_path}, "
          f"{len(missing)} missing")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
