#!/bin/bash
# tools/same_numerics.sh - two ablate binaries (two revisions) train the same short runs, one per
# mechanism and option family, and every step's loss and gradient norm and every validation line
# must be identical: the check that a refactoring kept the numerics. Ends with "N same, N different".
#   usage: tools/same_numerics.sh OLD_BINARY NEW_BINARY [extra train flags, e.g. --device cuda]
#   (OLD built from another revision: git archive REV | tar -x -C DIR && make -C DIR ablate)
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [train flags]" >&2; exit 2; }
A=$1; B=$2; shift 2
data=${DATA:-/usr/share/common-licenses/GPL-3}
base="--layers 2 --d-model 128 --heads 2 --seq 128 --batch 4 --steps 6 --eval-every 3 --eval-batches 1 --seed 5"
ok=0; bad=0
# the lines that carry numbers, without the timings
lines() { "$@" 2>&1 | grep -E "^step|val" | sed -E 's/[0-9.]+ ?(tok\/s|s|ms)\b//g'; }
while read -r name flags; do
    [ -z "$name" ] && continue
    a=$(lines "$A" train $base --data "$data" $flags "$@")
    b=$(lines "$B" train $base --data "$data" $flags "$@")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then
        ok=$((ok + 1)); echo "SAME $name"
    else
        bad=$((bad + 1)); echo "DIFF $name"; diff <(echo "$a") <(echo "$b") | head -6
    fi
done <<'LIST'
mha --attn mha
gqa --attn gqa --kv-heads 1
mqa_qknorm --attn mqa --qk-norm
swa --attn swa --window 16
pattern --attn swa --window 32 --global 2 --stride 64 --pattern-block 16
identity --attn identity
mla --attn mla --latent-dim 32 --q-latent-dim 16 --rope-dim 32
mga_gate --attn mga --mga-gate
gdn --attn gdn
dsa --attn dsa --topk 32 --indexer-heads 2 --indexer-dim 32
dsa_stages --attn dsa --topk 64 --indexer-heads 2 --indexer-dim 32 --dsa-warmup 2 --topk-start 8 --topk-ramp 3
schedule --attn-layers swa:8,mla
sandwich --attn gqa --norm sandwich
LIST
echo "$ok same, $bad different"
[ "$bad" = 0 ]
