#!/usr/bin/env bash
# tests/readme_figures.sh - tools/readme_figures.py: every figure in the README's tables is one
# that docs/benchmarks.md records (a dated, re-runnable measurement).
#
#   usage: tests/readme_figures.sh [./ablate-cpu]   (from the repository root; the binary is unused)
#
# Checks: the README as it stands passes; a README with one figure changed (a row's first
# thousands-separated number plus a little) fails, naming that line and figure; rounding is honoured
# (a figure given in K or MB where benchmarks.md records the full number passes); a missing
# file exits 2. Ends with "N passed, N failed".
set -u
SCRIPT_TAG=figures
. tests/script_check.sh

out=$(python3 tools/readme_figures.py README.md docs/benchmarks.md 2>&1)
check $? "every figure in README.md's tables is recorded in docs/benchmarks.md" "$out"

# one figure changed: the first row of a figure table holding a thousands-separated number
line=$(grep -n '^| .*[0-9],[0-9][0-9][0-9]' README.md | grep -v -i 'paper' | head -1 | cut -d: -f1)
fig=$(sed -n "${line}p" README.md | grep -o '[0-9]\{1,3\}\(,[0-9]\{3\}\)\+' | head -1)
# the figure plus k, written with separators, for the first k = 1, 2, ... that benchmarks.md lacks
for k in 1 2 3 4 5 6 7 8 9; do
    new=$(printf '%s' "$fig" | tr -d , | awk -v k="$k" '{n = $1 + k; s = ""; while (n >= 1000) { s = sprintf(",%03d", n % 1000) s; n = int(n / 1000) } print n s}')
    grep -qF "$new" docs/benchmarks.md || break
done
sed "${line}s/$fig/$new/" README.md > "$tmp/README.md"
out=$(python3 tools/readme_figures.py "$tmp/README.md" docs/benchmarks.md 2>&1)
rc=$?
[ "$rc" -eq 1 ] && printf '%s' "$out" | grep -q "README.md:$line: $new is in no number"
check $? "a changed figure ($fig -> $new on line $line) is named" "rc $rc: $out"

# rounding: 12,345,678 bytes is 12.3 MB and 12346K; 41.95 is 41.9 or 42.0; 12.4 MB is not recorded
printf 'x 12,345,678 y 41.95\n' > "$tmp/bench.md"
printf '| a | b |\n| --- | --- |\n| r | 12.3 MB, 12346K, 41.9, 42.0 |\n' > "$tmp/ok.md"
python3 tools/readme_figures.py "$tmp/ok.md" "$tmp/bench.md" > "$tmp/out" 2>&1
check $? "rounded figures (MB from bytes, K, a tie) are found" "$(cat "$tmp/out")"
printf '| a | b |\n| --- | --- |\n| r | 12.4 MB |\n' > "$tmp/bad.md"
python3 tools/readme_figures.py "$tmp/bad.md" "$tmp/bench.md" > "$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "12.4MB is in no number" "$tmp/out"
check $? "a figure no recorded number rounds to is refused" "$(cat "$tmp/out")"
python3 tools/readme_figures.py "$tmp/nothing.md" "$tmp/bench.md" > "$tmp/out" 2>&1
[ $? -eq 2 ]
check $? "a missing file: exit 2" "$(cat "$tmp/out")"
finish
