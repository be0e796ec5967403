#!/usr/bin/env bash
# tests/ncu_summary.sh - tools/ncu_summary.py (tools/ncu_decode.sh's summary of an Nsight Compute
# CSV) on a CSV written here in ncu's --page raw shape, without a GPU or ncu.
#
#   usage: tests/ncu_summary.sh [ignored]   (from the repository root; make test passes ./ablate-cpu)
#
# Checks: only the last step counts (the kernels after the second-to-last dec_sample); kernels
# of one name and grid are summed (calls, us each, share); durations with thousands separators
# are read as numbers; ncu's own lines and the units row are skipped; the total line; a file
# without a header row is refused, naming the file. Ends with "N passed, N failed".
set -u
SCRIPT_TAG=ncu
. tests/script_check.sh

python3 -m py_compile tools/ncu_summary.py 2>"$tmp/err" && bash -n tools/ncu_decode.sh 2>>"$tmp/err"
check $? "ncu_summary.py and ncu_decode.sh parse" "$(cat "$tmp/err")"

cat > "$tmp/a.csv" <<'CSV'
==PROF== Connected to process 1 (decode_step)
"ID","Kernel Name","Grid Size","gpu__time_duration.sum"
"","","","ns"
"0","k_a","(1, 1, 1)","9,000"
"1","dec_sample","(1, 1, 1)","500"
"2","k_a","(1, 1, 1)","1,000"
"3","k_b","(4, 2, 1)","2,500"
"4","k_a","(1, 1, 1)","1,500"
"5","dec_sample","(1, 1, 1)","600"
==PROF== Disconnected from process 1
CSV
python3 tools/ncu_summary.py "$tmp/a.csv" > "$tmp/out" 2>&1
check $? "a CSV in ncu's raw shape is summarised" "$(cat "$tmp/out")"
grep -q "^k_a .*(1, 1, 1) *2 *1.25 *2.5 *44.6%" "$tmp/out"
check $? "k_a: 2 calls of the last step, 1.25 us each, 2.5 us, 44.6% (the first step's 9 us left out)" "$(cat "$tmp/out")"
grep -q "^k_b .*(4, 2, 1) *1 *2.50 *2.5 *44.6%" "$tmp/out"
check $? "k_b: 1 call, 2.5 us (a thousands separator read as a number)" "$(cat "$tmp/out")"
grep -q "^dec_sample .* 1 *0.60 *0.6 *10.7%" "$tmp/out"
check $? "the last step's sampler counts, the first step's does not" "$(cat "$tmp/out")"
grep -q "^4 kernels, 5.6 us in all" "$tmp/out"
check $? "the total line: 4 kernels, 5.6 us" "$(tail -n 1 "$tmp/out")"
[ "$(sed -n 2p "$tmp/out" | cut -c1-3)" = "k_a" ] || [ "$(sed -n 2p "$tmp/out" | cut -c1-3)" = "k_b" ]
check $? "largest first" "$(cat "$tmp/out")"

printf 'no header here\n' > "$tmp/bad.csv"
python3 tools/ncu_summary.py "$tmp/bad.csv" > "$tmp/out" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "bad.csv" "$tmp/out" && grep -q "no kernel rows" "$tmp/out"
check $? "a file without a header row is refused, naming it (exit $rc)" "$(cat "$tmp/out")"

finish
