#!/bin/sh
# gpu_repro.sh - bit-reproducible training through the command line (issue 14): the same
# study run twice must write identical metrics.jsonl files, and the same study killed
# with SIGKILL after a checkpoint and continued with `ablate run --resume` must write the
# same ones again. Compared: every field of every line but the timing ones (tokens_per_s,
# elapsed): step, tokens, loss, lr, grad_norm (floats printed with %.9g, which round-trips a
# float exactly), val_loss and val_bpb (doubles printed with %.17g, exact), val_ppl and
# whatever else a line carries.
# Prints one summary line; exits 1 on any difference, 2 when it could not test.
#
# Usage: tools/gpu_repro.sh [ABLATE]      (default ./ablate)
#   DEVICE=cuda   the device (cpu to try the script itself: the CPU is bit-reproducible too)
#   OUT=DIR       work directory (default build/repro; emptied first)
#   ATTN=LIST     the mechanisms of the study's axis (default gqa,mla,mga,gdn,dsa)
#   STEPS=N SEQ=N BATCH=N DMODEL=N   the runs' size (defaults 300, 256, 4, 128)
set -u
ab=${1:-./ablate}
dev=${DEVICE:-cuda}
out=${OUT:-build/repro}
attn=${ATTN:-gqa,mla,mga,gdn,dsa}
steps=${STEPS:-300}
every=$((steps / 10))
[ "$every" -ge 1 ] || every=1
[ -x "$ab" ] || { echo "gpu_repro: $ab is not an executable (build it: make ablate)"; exit 2; }
rm -rf "$out"
mkdir -p "$out"

# byte-level text: GPL-3 when present, else seeded words (the same file every time)
data=/usr/share/common-licenses/GPL-3
if [ ! -r "$data" ]; then
    data="$out/text.txt"
    awk 'BEGIN { srand(7); split("the model of attention a kernel sums in order every run gives same bits and loss step", w, " ");
                 for (i = 0; i < 40000; i++) printf "%s%s", w[1 + int(rand() * 17)], (i % 11 == 10) ? "\n" : " " }' > "$data"
fi

study() { # study DIR: the study, quietly (log in DIR.log); with as_process set, ablate replaces the shell
    ${as_process:+exec} "$ab" run --axes attn="$attn" --steps "$steps" --layers 2 --d-model "${DMODEL:-128}" --heads 2 \
        --seq "${SEQ:-256}" --batch "${BATCH:-4}" --topk 64 --dsa-warmup "$every" --eval-every "$every" \
        --eval-batches 2 --checkpoint-every "$every" --device "$dev" --data "$data" --quiet --out "$1" \
        > "$1.log" 2>&1
}

# metrics without the timing fields
strip() { sed -E 's/"(tokens_per_s|elapsed)": [^,}]*(, )?//g' "$1"; }

# same DIR1 DIR2 WHAT: every run's metrics equal; prints the first difference
same() {
    n=0
    for m in "$1"/*/metrics.jsonl; do
        [ -f "$m" ] || continue
        run=$(basename "$(dirname "$m")")
        other="$2/$run/metrics.jsonl"
        n=$((n + 1))
        if [ ! -f "$other" ]; then
            echo "gpu_repro: $3: $other is missing"
            return 1
        fi
        strip "$m" > "$out/a.jsonl"
        strip "$other" > "$out/b.jsonl"
        if ! cmp -s "$out/a.jsonl" "$out/b.jsonl"; then
            echo "gpu_repro: $3: $run differs; first differing lines:"
            diff "$out/a.jsonl" "$out/b.jsonl" | head -n 4
            return 1
        fi
    done
    if [ "$n" -eq 0 ]; then
        echo "gpu_repro: $3: no metrics.jsonl under $1"
        return 1
    fi
    runs=$n
    return 0
}

# 1. the same study twice
study "$out/a" || { echo "gpu_repro: the first study failed (rc $?, see $out/a.log)"; tail -n 5 "$out/a.log"; exit 2; }
study "$out/b" || { echo "gpu_repro: the second study failed (see $out/b.log)"; exit 2; }
same "$out/a" "$out/b" "two identical studies" || exit 1
twice=$runs

# 2. the same study killed with SIGKILL a few steps past its first checkpoint, then resumed
# (as its own process: a kill -9 of a subshell would leave ablate running, holding the study's lock)
(as_process=1 study "$out/c") &
pid=$!
trap 'kill -9 "$pid" 2> /dev/null' EXIT # a failure of this script leaves no study running
killed=""
i=0
while [ $i -lt 6000 ] && kill -0 "$pid" 2> /dev/null; do
    # a finished checkpoint: ckpt-N (ckpt-N.tmp is one being written)
    ck=$(find "$out/c" -mindepth 2 -maxdepth 2 -type d -name 'ckpt-*' ! -name '*.tmp' 2> /dev/null | head -n 1)
    if [ -n "$ck" ]; then
        at=$(basename "$ck" | sed 's/^ckpt-0*//')
        m="$(dirname "$ck")/metrics.jsonl"
        last=$(tail -n 1 "$m" 2> /dev/null | sed -n 's/^{"step": \([0-9]*\),.*/\1/p')
        if [ -n "$last" ] && [ "$last" -ge $((at + 2)) ]; then
            kill -9 "$pid"
            killed="$(basename "$(dirname "$ck")") at step $last (checkpoint $at)"
            break
        fi
    fi
    sleep 0.05
    i=$((i + 1))
done
wait "$pid" 2> /dev/null
trap - EXIT # it has ended: its pid may be another process's from now on
if [ -z "$killed" ]; then
    echo "gpu_repro: the study was not killed mid-run (it ended first or no checkpoint appeared; see $out/c.log)"
    exit 2
fi
"$ab" run --resume "$out/c" --quiet > "$out/c-resume.log" 2>&1 ||
    { echo "gpu_repro: ablate run --resume failed (see $out/c-resume.log)"; exit 1; }
same "$out/a" "$out/c" "killed and resumed" || exit 1
echo "gpu_repro: $dev: $twice runs ($attn, $steps steps) identical twice; killed $killed and resumed: identical"
exit 0
