#!/usr/bin/env bash
# tools/bench_peers.sh - the speed comparison with PyTorch, both sides in one run on one GPU:
# builds ./ablate, runs its three bench parts, then tools/peers.py at the same shapes, and
# prints a side-by-side table last (ablate against each peer, one row per shape).
#
#   usage: tools/bench_peers.sh [STEPS]     (from the repository root; STEPS: timed training
#                                            steps, default 10; (b) times 4x as many)
#
# Logs go under $OUT (default build/peers): build.log, train.log, attn.log, mech.log (ablate
# bench --only train --attn gqa,gdn,dsa / --only attn / --only mech), peers.log and peers.json
# (tools/peers.py --json); train.log holds the (a) and (b) shapes with gqa, gdn and dsa
# (the side-by-side table reads gqa's). The Gated DeltaNet peer needs fla's wheels in build/wheels (see
# tools/peers.py's header); without them that row says n/a and why. A step that fails is
# reported and the rest still run; the exit status is that of the first failed step (0: all ran).
set -u
cd "$(dirname "$0")/.."
out=${OUT:-build/peers}
steps=${1:-10}
mkdir -p "$out"
status=0
step() { # name log command...: run, log, one summary line
    local name=$1 log=$2 rc
    shift 2
    echo "== $name: $*"
    "$@" > "$out/$log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || { echo "FAILED $name (exit $rc): tail of $out/$log"; tail -n 5 "$out/$log"; [ $status -ne 0 ] || status=$rc; }
    return $rc
}
if step build build.log make ablate; then
    # gqa first (the shape PyTorch's Llama matches), then the mechanisms whose (a) rows are
    # compared with gqa's: all of them from one lease
    step "ablate train" train.log ./ablate bench --only train --attn gqa,gdn,dsa --steps "$steps"
    step "ablate attn" attn.log ./ablate bench --only attn
    step "ablate mech" mech.log ./ablate bench --only mech
fi
step peers peers.log python3 tools/peers.py --steps "$steps" --json "$out/peers.json" --ablate-logs "$out"
for f in train attn mech; do [ -f "$out/$f.log" ] && { echo; echo "---- ablate $f"; cat "$out/$f.log"; }; done
echo
echo "---- peers (tools/peers.py)"
cat "$out/peers.log" 2>/dev/null
exit $status
