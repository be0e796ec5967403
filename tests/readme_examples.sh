#!/usr/bin/env bash
# tests/readme_examples.sh - runs the README's CPU examples, shrunk, so that they cannot drift.
#
#   usage: tests/readme_examples.sh [path/to/ablate-cpu] [path/to/README.md]
#
# Reads README.md at run time (never a copy of its lines): from every ```sh block, each line
# that runs ./ablate-cpu (a trailing \ joins the next line; a # comment is dropped), in order,
# in one temporary directory, so that one example may use another's output (tok.json,
# data/kjv, model.safetensors, runs/mech). Skipped: lines that run make (the build and the
# test suite themselves), ./ablate (the GPU build), anything that needs the network, and the
# bare default study `./ablate-cpu` (a few minutes at its fixed size: .ci/run runs it as the
# README's first line does). Every ```ini block (a study spec) is run too, as
# `ablate-cpu run specN.ini`, and a NAME.ini that an example reads is the first ini block.
#
# The shrinking rule (a budget, never a mechanism or a shape that the example is about):
#   --steps N -> 2, --seq T -> 32, --batch B -> 2, --layers L -> 1, --seeds N -> 2 (at most),
#   --vocab V -> 300 (at most), --eval-batches -> 1, --final-eval-tokens -> 2048 (the last
#   evaluation would score the whole validation split); a `...` in an example stands for these
#   budget flags; a train line or a run --axes line without one of --steps --layers --seq
#   --batch --eval-batches --final-eval-tokens gets it appended with the small value, and
#   --d-model 48 --heads 2 when it names neither. In an ini block the same keys (steps, seq,
#   batch, layers, seeds, eval_batches, final_eval_tokens; tokens -> 2000) are set to the same
#   values and the absent ones are added before its first section.
# data/corpus.txt in the directory is the first 200 KB of the repository's data/corpus.txt
# (what `make` writes), or the GPL-3 text (the tool's own fallback) when there is none.
# Each example runs under a 300 s timeout and fails when it exits non-zero.
# First, every file the README points to must be in the repository: link and image targets
# ](PATH), and `docs/...`, `tools/...`, `examples/...`, `tests/...` in backquotes (a program
# such as tests/run_tests counts when its PATH.c is there), so that a rename cannot leave the
# manual pointing at nothing.
# Prints PASS/FAIL/skip per example and ends with "N passed, N failed".
set -u
BIN=$(realpath "${1:-./ablate-cpu}")
README=$(realpath "${2:-README.md}")
REPO=$(dirname "$README")
FALLBACK=/usr/share/common-licenses/GPL-3
pass=0 fail=0
if [ ! -x "$BIN" ] || [ ! -f "$README" ]; then
    echo "FAIL readme examples: need an ablate-cpu binary ($BIN) and README.md ($README)"
    echo "0 passed, 1 failed"
    exit 1
fi
tmp=$(mktemp -d /tmp/ablate_readme.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
if [ -f "$REPO/data/corpus.txt" ]; then head -c 200000 "$REPO/data/corpus.txt" > "$tmp/data/corpus.txt"
else cp "$FALLBACK" "$tmp/data/corpus.txt"; fi

BUDGET="--layers 1 --seq 32 --batch 2 --steps 2 --eval-batches 1 --final-eval-tokens 2048"

# the README's sh lines (continuations joined) and ini blocks, one record each:
#   sh<TAB>LINE<TAB>command       ini<TAB>LINE<TAB>file (the block, written to $tmp/specN.ini)
extract() {
    awk -v dir="$tmp" '
        /^```/ {
            if (block != "") { if (block == "ini") close(file); block = ""; next }
            if ($0 ~ /^```sh/) block = "sh"
            else if ($0 ~ /^```ini/) { block = "ini"; n++; file = dir "/spec" n ".ini"; print "ini\t" NR "\t" file }
            else block = "other"
            next
        }
        block == "ini" { print > file; next }
        block == "sh" {
            line = $0
            if (cont != "") { line = cont " " line; start = start } else start = NR
            if (line ~ /\\$/) { sub(/\\$/, "", line); cont = line; next }
            cont = ""
            sub(/[ \t]+#.*$/, "", line)
            gsub(/[ \t]+/, " ", line); sub(/^ /, "", line); sub(/ $/, "", line)
            if (line != "") print "sh\t" start "\t" line
        }' "$README"
}

# shrink one ablate-cpu command line (words; no quoting is needed by the README's examples)
shrink_cmd() {
    local out=() w prev="" sub="" has=" " i=0
    read -r -a words <<< "$1"
    for w in "${words[@]}"; do
        i=$((i + 1))
        [ $i -eq 2 ] && sub=$w
        if [ "$w" = "..." ]; then out+=($BUDGET); has+="--steps --layers --seq --batch --eval-batches --final-eval-tokens "; prev=$w; continue; fi
        case "$prev" in
            --steps) w=2 ;;
            --seq) w=32 ;;
            --batch) w=2 ;;
            --layers) w=1 ;;
            --eval-batches) w=1 ;;
            --final-eval-tokens) w=2048 ;;
            --seeds) [ "$w" -gt 2 ] 2>/dev/null && w=2 ;;
            --vocab) [ "$w" -gt 300 ] 2>/dev/null && w=300 ;;
        esac
        case "$w" in --*) has+="$w " ;; esac
        out+=("$w")
        prev=$w
    done
    # train and grid runs get the budget they lack (a spec file carries its own, shrunk below)
    if [ "$sub" = train ] || { [ "$sub" = run ] && [[ "$has" == *" --axes "* ]]; }; then
        local f v
        for f in --steps:2 --layers:1 --seq:32 --batch:2 --eval-batches:1 --final-eval-tokens:2048; do
            v=${f#*:}; f=${f%%:*}
            [[ "$has" == *" $f "* ]] || out+=("$f" "$v")
        done
        [[ "$has" == *" --d-model "* || "$has" == *" --heads "* ]] || out+=(--d-model 48 --heads 2)
    fi
    echo "${out[*]}"
}

# shrink an ini spec in place (same rule as the flags)
shrink_ini() {
    local f=$1 add="" k
    awk '
        function setv(v) { sub(/=[^#]*/, "= " v " ") }
        /^[ \t]*\[/ { print; next }
        {
            key = $0; sub(/[ \t]*=.*/, "", key); gsub(/[ \t]/, "", key)
            val = $0; sub(/^[^=]*=[ \t]*/, "", val); sub(/[ \t]*#.*$/, "", val)
            if (key == "steps") setv(2)
            else if (key == "seq") setv(32)
            else if (key == "batch") setv(2)
            else if (key == "layers") setv(1)
            else if (key == "eval_batches") setv(1)
            else if (key == "final_eval_tokens") setv(2048)
            else if (key == "tokens") setv(2000)
            else if (key == "seeds") {
                if (val ~ /,/) { split(val, s, ","); setv(s[1] "," s[2]) }
                else if (val + 0 > 2) setv(2)
            }
            print
        }' "$f" > "$f.tmp"
    for k in steps:2 layers:1 seq:32 batch:2 eval_batches:1 final_eval_tokens:2048; do
        grep -Eq "^[ \t]*${k%%:*}[ \t]*=" "$f.tmp" || add+="${k%%:*} = ${k#*:}"$'\n'
    done
    grep -Eq '^[ \t]*(d_model|heads)[ \t]*=' "$f.tmp" || add+=$'d_model = 48\nheads = 2\n'
    # the added keys go first: before the first section they are base keys
    { printf '%s' "$add"; cat "$f.tmp"; } > "$f"
    rm -f "$f.tmp"
}

run_one() { # name, command (run by bash in $tmp)
    local name=$1 cmd=$2 log=$tmp/.out rc t0=$SECONDS
    (cd "$tmp" && timeout 300 bash -c "$cmd") > "$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "PASS $name: $cmd ($((SECONDS - t0)) s)"
    else
        fail=$((fail + 1)); echo "FAIL $name: $cmd (exit $rc; expected 0)"
        tail -n 8 "$log" | sed 's/^/     /'
    fi
}

# the files the README names
check_paths() {
    { grep -o '](\([^)#]*\)' "$README" | sed 's/^](//; s/)$//' | grep -Ev '^(https?:|mailto:)'
      grep -o '`\(docs\|tools\|examples\|tests\)/[A-Za-z0-9_./-]*`' "$README" | tr -d '`'
    } | sort -u | while read -r p; do
        if [ -e "$REPO/$p" ] || [ -e "$REPO/$p.c" ]; then echo "ok $p"; else echo "missing $p"; fi
    done
}
paths=$(check_paths)
missing=$(printf '%s\n' "$paths" | sed -n 's/^missing //p')
if [ -z "$missing" ]; then
    pass=$((pass + 1)); echo "PASS README.md names only files that exist ($(printf '%s\n' "$paths" | grep -c '^ok ') paths)"
else
    fail=$((fail + 1)); echo "FAIL README.md names files that do not exist (expected every one in the repository):" $missing
fi

records=$(extract)
first_ini=""
while IFS=$'\t' read -r kind line text; do
    [ "$kind" = ini ] || continue
    shrink_ini "$text"
    [ -n "$first_ini" ] || first_ini=$text
done <<< "$records"

while IFS=$'\t' read -r kind line text; do
    [ "$kind" = sh ] || continue
    case "$text" in
        ./ablate-cpu|./ablate-cpu\ *) ;;
        *) continue ;; # make, ./ablate (GPU), anything else: not a CPU example
    esac
    if [ "$text" = ./ablate-cpu ]; then echo "skip README.md:$line: ./ablate-cpu (the default study at full size: .ci/run runs it)"; continue; fi
    case "$text" in *http://*|*https://*|*curl\ *|*wget\ *|*pip\ *) echo "skip README.md:$line: $text (network)"; continue ;; esac
    cmd=$(shrink_cmd "$text")
    # a spec file an example reads and none wrote: the README's spec block
    for w in $cmd; do
        case "$w" in *.ini) [ -e "$tmp/$w" ] || { [ -n "$first_ini" ] && cp "$first_ini" "$tmp/$w"; } ;; esac
    done
    run_one "README.md:$line" "${cmd/#.\/ablate-cpu/$BIN}"
done <<< "$records"

# each spec block on its own as well
while IFS=$'\t' read -r kind line text; do
    [ "$kind" = ini ] || continue
    spec=$(basename "$text" .ini)
    run_one "README.md:$line (ini block)" "$BIN run $spec.ini --out runs/readme_$spec"
done <<< "$records"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
