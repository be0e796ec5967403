# tests/script_check.sh - sourced by the script tests (make_fallbacks.sh, peers_dryrun.sh,
# ncu_summary.sh): the PASS/FAIL counters and check(), a temporary directory $tmp named
# /tmp/ablate_$SCRIPT_TAG.* and removed on exit, and finish(), the closing "N passed, N failed"
# line whose status is the script's (0: nothing failed).
pass=0 fail=0
check() { # ok(0/1) name detail
    if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "PASS $2"; else fail=$((fail + 1)); echo "FAIL $2: $3"; fi
}
tmp=$(mktemp -d "/tmp/ablate_${SCRIPT_TAG:-test}.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
