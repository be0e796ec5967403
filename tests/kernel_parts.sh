#!/usr/bin/env bash
# tests/kernel_parts.sh - tools/kernel_parts.py: every launcher in attn/dsa.cu.h asks for its
# kernel in the module (SPARSE_PART) that holds it.
#
#   usage: tests/kernel_parts.sh [./ablate-cpu]   (from the repository root; the binary is unused)
#
# Checks: the header as it stands passes; a copy where one shared kernel (sparse_mask) is asked
# for with the attention's options fails, naming it; a copy where the table moves fill_f32 to the
# indexer's part fails; a missing file exits 2. Ends with "N passed, N failed".
set -u
SCRIPT_TAG=parts
. tests/script_check.sh

out=$(python3 tools/kernel_parts.py attn/dsa.cu.h 2>&1)
check $? "every kernel lookup uses its part's options" "$out"

sed 's/"sparse_mask", SPARSE_COMMON_OPTS)/"sparse_mask", opt)/' attn/dsa.cu.h > "$tmp/a.h"
grep -q '"sparse_mask", opt)' "$tmp/a.h"
check $? "the mutation (sparse_mask with opt) applies" ""
out=$(python3 tools/kernel_parts.py "$tmp/a.h" 2>&1)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "sparse_mask is asked for with opt"
check $? "a lookup with another part's options is named" "$out"

sed 's/"fill_f32", "idx_prep"/"idx_prep"/; s/{"idx_scores_bf16", /{"fill_f32", "idx_scores_bf16", /' attn/dsa.cu.h > "$tmp/b.h"
out=$(python3 tools/kernel_parts.py "$tmp/b.h" 2>&1)
[ $? -eq 1 ] && printf '%s' "$out" | grep -q "fill_f32 is asked for with SPARSE_COMMON_OPTS (part 0), but sparse_part_kernels_ puts it in part 2"
check $? "a table that moves a kernel is caught" "$out"

python3 tools/kernel_parts.py "$tmp/none.h" > "$tmp/out" 2>&1
[ $? -eq 2 ]
check $? "a missing file: exit 2" "$(cat "$tmp/out")"
finish
