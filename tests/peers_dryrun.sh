#!/usr/bin/env bash
# tests/peers_dryrun.sh - tools/peers.py (the PyTorch side of the bench) without a GPU or torch.
#
#   usage: tests/peers_dryrun.sh ./ablate-cpu   (from the repository root)
#
# Checks:
#   - tools/peers.py and tools/bench_peers.sh parse (py_compile, bash -n).
#   - every shape and FLOP-count line of `ablate bench --dry-run` is printed verbatim by
#     `tools/peers.py --dry-run`: both sides time the same shapes and count FLOPs the same way
#     (ablate's side comes from smollm_config_train_flops_per_token and bench_attn_flops).
#   - the parameter count the Llama peer must have is SmolLM2-135M's (134,515,008).
#   - --ablate-logs reads real `ablate bench` output (CPU shapes) for all three parts, and a
#     GPU-format training line printed with ablate.c's own format string.
#   - --only refuses an unknown part, naming it; --steps 0 is refused.
#   - with no torch here, a real run prints "n/a" and the reason for every row of every part
#     asked for, exits 0 and writes the JSON.
#   - lift_fla_guard opens a guard shaped as fla 0.6's (a module flag read at each call) once,
#     says so, and leaves a fla without it alone; a lifted row is starred, with the footnote.
# Ends with "N passed, N failed".
set -u
bin=${1:-./ablate-cpu}
SCRIPT_TAG=peers
. tests/script_check.sh

python3 -m py_compile tools/peers.py 2>"$tmp/err" && bash -n tools/bench_peers.sh 2>>"$tmp/err"
check $? "peers.py and bench_peers.sh parse" "$(cat "$tmp/err")"

"$bin" bench --dry-run --attn gqa > "$tmp/ablate.txt" 2>&1
python3 tools/peers.py --dry-run > "$tmp/peers.txt" 2>&1
missing=$(while IFS= read -r l; do grep -qxF "$l" "$tmp/peers.txt" || echo "$l"; done < "$tmp/ablate.txt")
n=$(wc -l < "$tmp/ablate.txt")
[ "$n" -ge 8 ] && [ -z "$missing" ]
check $? "peers.py --dry-run prints ablate bench --dry-run's $n shape/FLOP lines" "missing: $missing"
grep -qx "params layers=30 134515008" "$tmp/peers.txt" # smollm.h's count (run_tests checks it there)
check $? "peers.py expects the Llama model to have SmolLM2-135M's 134,515,008 parameters" "$(head -c 300 "$tmp/peers.txt")"
grep -q "^attn hd=128 B=4 H=16 T=16384 " "$tmp/peers.txt"
check $? "peers.py also times hd 128 and T 16384" "$(head -c 300 "$tmp/peers.txt")"

"$bin" bench --only attn > "$tmp/attn.log" 2>&1 && "$bin" bench --only mech > "$tmp/mech.log" 2>&1 &&
    "$bin" bench --only train --steps 1 > "$tmp/train.log" 2>&1
check $? "ablate-cpu bench runs" "$(tail -n 3 "$tmp"/*.log)"
python3 tools/peers.py --dry-run --ablate-logs "$tmp" > "$tmp/parsed.txt" 2>&1
# numbers as JSON writes them: no trailing zeros, but a whole number keeps one (473.00 ms -> 473.0)
ms=$(sed -n 's/.*fwd+bwd *\([0-9.]*\) ms.*/\1/p' "$tmp/attn.log" | awk '{printf "%.10g", $1 + 0}')
grep -qE "^ablate attn_hd64_T128 .*\"fwdbwd_ms\": $ms(\.0)?," "$tmp/parsed.txt"
check $? "--ablate-logs reads ablate's attention line (fwd+bwd $ms ms)" "$(grep ^ablate "$tmp/parsed.txt")"
gb=$(awk '$1 == "128" && $2 == "|" {printf "%.10g", $10 + 0; exit}' "$tmp/mech.log") # T | dense f b | dsa f b | gdn f b
grep -qE "^ablate gdn_T128 .*\"fwdbwd_ms\": $gb(\.0)?}" "$tmp/parsed.txt"
check $? "--ablate-logs reads the gdn chunk-par column of the mech table ($gb ms)" "$(grep ^ablate "$tmp/parsed.txt")"
grep -q "^ablate train_cpu .*\"tok_s\": " "$tmp/parsed.txt"
check $? "--ablate-logs reads the CPU training line" "$(grep ^ablate "$tmp/parsed.txt")"

# a GPU training line, printed with the format string bench_training uses (read from ablate.c)
fmt=$(grep -o '"%-40s %10.0f %9.1f %8.1f%% [^"]*"' ablate.c | head -n 1 | tr -d '"')
mkdir -p "$tmp/gpu"
printf "${fmt}" "(a) 135M gqa, 16 x 2048" 332123 45.1 4.6 15.31 98.7 12.30 > "$tmp/gpu/train.log"
printf "${fmt}" "(b) 4 layers gqa, 4 x 512" 899456 20.1 2.0 1.25 2.3 3.10 >> "$tmp/gpu/train.log"
python3 tools/peers.py --dry-run --ablate-logs "$tmp/gpu" > "$tmp/gpu.txt" 2>&1
[ -n "$fmt" ] && grep -q '^ablate train_a .*"peak_gb": 15.31.*"tok_s": 332123.0' "$tmp/gpu.txt" &&
    grep -q '^(a) 30 layers, 16 x 2048 *332123 | 15.3 ' "$tmp/gpu.txt" && grep -q '^ablate train_b .*"tok_s": 899456.0' "$tmp/gpu.txt"
check $? "--ablate-logs reads GPU training lines into the side-by-side table" "fmt '$fmt': $(grep -e ^ablate -e '^(a)' "$tmp/gpu.txt")"

python3 tools/peers.py --only train,bogus > "$tmp/o" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "unknown part 'bogus'" "$tmp/o"
check $? "--only bogus is refused, naming it" "exit $rc: $(cat "$tmp/o")"
python3 tools/peers.py --steps 0 > "$tmp/o" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q -- "--steps 0" "$tmp/o"
check $? "--steps 0 is refused" "exit $rc: $(cat "$tmp/o")"

# fla 0.6's guard, in miniature: a module flag imported from elsewhere, read at each call
mkdir -p "$tmp/fake/fla/ops/common"
touch "$tmp/fake/fla/__init__.py" "$tmp/fake/fla/ops/__init__.py" "$tmp/fake/fla/ops/common/__init__.py"
cat > "$tmp/fake/fla/ops/common/chunk_o.py" <<'PY'
TRITON_ABOVE_3_7_1 = False


def chunk_bwd_dqkwg():
    if not TRITON_ABOVE_3_7_1:
        raise RuntimeError("Triton >= 3.4.0 and < 3.7.1 on Hopper GPUs produces incorrect results")
    return "ran"
PY
PYTHONPATH="$tmp/fake:tools" python3 - > "$tmp/o" 2>&1 <<'PY'
import peers
from fla.ops.common import chunk_o
try:
    chunk_o.chunk_bwd_dqkwg()
    raise SystemExit("the fake guard did not refuse")
except RuntimeError as e:
    assert "3.7.1" in str(e)
note = peers.lift_fla_guard()
assert note == peers.FLA_GUARD_NOTE, note
assert chunk_o.chunk_bwd_dqkwg() == "ran"
assert peers.lift_fla_guard() is None  # already open: nothing lifted, nothing noted
print("ok")
PY
grep -qx ok "$tmp/o"
check $? "lift_fla_guard opens fla's Triton guard once and says so" "$(cat "$tmp/o")"
PYTHONPATH="$tmp/none:tools" python3 -c "import peers, sys; sys.exit(peers.lift_fla_guard() is not None)" > "$tmp/o" 2>&1
check $? "lift_fla_guard without fla lifts nothing" "$(cat "$tmp/o")"
python3 tools/peers.py --dry-run > "$tmp/o" 2>&1
grep -qE "^T 16384, B 4, H 16, hd 64 +[0-9.]+ +[0-9.]+\*" "$tmp/o" && grep -qxF "* fla: $(python3 -c "import sys; sys.path.insert(0, 'tools'); import peers; print(peers.FLA_GUARD_NOTE)")" "$tmp/o"
check $? "a row timed with the guard lifted is starred, with the footnote" "$(grep -A4 '^gated deltanet' "$tmp/o")"

if python3 -c "import torch" 2>/dev/null; then
    echo "SKIP the no-torch guard: torch is installed here"
else
    python3 tools/peers.py --only attn,gdn --json "$tmp/p.json" > "$tmp/o" 2>&1
    rc=$?
    nas=$(grep -c "n/a: torch not importable" "$tmp/o")
    [ $rc -eq 0 ] && [ "$nas" -eq 19 ] && ! grep -q "^== train" "$tmp/o" && ! grep -q Traceback "$tmp/o" &&
        python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not all('na' in v for v in d.values()) or len(d) != 19)" "$tmp/p.json"
    check $? "without torch every attn and gdn row says n/a and why, exit 0, JSON written" "exit $rc, $nas n/a: $(head -c 600 "$tmp/o")"
fi

finish
