#!/bin/sh
# gpu_checks.sh - the GPU checks and timings on a GPU machine, each step
# logged under $OUT (default build/device), a one-line-per-step summary printed last.
# A failing step does not stop the others. Parts, each sized to run in under 10 minutes:
#   tools/gpu_checks.sh checks   build, every GPU check against the CPU reference,
#                                    bit-reproducible training (repro's two steps),
#                                    compute-sanitizer memcheck (about 5 min on an H100)
#   tools/gpu_checks.sh repro    build, then only the bit-reproducibility checks:
#                                    tests/gpu_determinism_check (same run twice in one
#                                    process, op timing) and tools/gpu_repro.sh (the CLI:
#                                    two studies, a killed-and-resumed one)
#   tools/gpu_checks.sh timing   the timing tables: kernels, mechanisms (both GDN
#                                    organizations), whole models (GDN with --tune gdn_par=0/1)
#   tools/gpu_checks.sh all      both
#   tools/gpu_checks.sh first    build, then each mechanism's first training step of the (a)
#                                    shape with the kernel cache off (NVRTC in the step's time),
#                                    dsa first: run it first on a freshly started machine for
#                                    the "first process on a fresh machine" figure
#   tools/gpu_checks.sh wide     build, then the wide-head kernels: GDN's tiles past 128
#                                    (gdn_wtile=2: gpu_linear_check's checks (--wide-only), then
#                                    its by-head-dim table) and the Hopper wgmma kernels at the
#                                    widths other than 64 (attn_wgmma=3: gpu_attn_check's checks
#                                    and timing table, --wide-only), each step under a time limit
#   tools/gpu_checks.sh dist     build, then data parallel over every GPU of the machine:
#                                    tests/gpu_dist_check (its 2-GPU cases need two) and
#                                    ablate bench --gpus N (N the GPU count; 1 to N GPUs,
#                                    one sum and 25 MB buckets)
# Usage: OUT=/some/dir tools/gpu_checks.sh checks|timing|repro|first|wide|dist|all
set -u
part=${1:-}
case "$part" in
checks | timing | repro | first | wide | dist | all) ;;
*)
    echo "usage: $0 checks|timing|repro|first|wide|dist|all   (logs and summary.txt under \$OUT, default build/device)" >&2
    exit 2
    ;;
esac
out=${OUT:-build/device}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"

# step NAME COMMAND...: run, log to $out/NAME.log, add "NAME rc seconds last-line" to the summary
step() {
    name=$1
    shift
    t0=$(date +%s)
    echo "== $name: $*"
    "$@" > "$out/$name.log" 2>&1
    rc=$?
    printf '%-28s rc %-3d %4ds  %s\n' "$name" "$rc" "$(($(date +%s) - t0))" \
        "$(grep -v '^\s*$' "$out/$name.log" | tail -n 1 | cut -c1-110)" >> "$summary"
}

nproc=$(nproc 2>/dev/null || echo 4)
step build make -j"$nproc" all gpuprogs
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv > "$out/gpu.txt" 2>&1

if [ "$part" = checks ] || [ "$part" = all ]; then
    step gpu_ops_check ./tests/gpu_ops_check
    step gpu_attn_check ./tests/gpu_attn_check --no-timing
    step gpu_check ./tests/gpu_check
    step gpu_sparse_check ./tests/gpu_sparse_check --no-timing
    step gpu_kcache_check ./tests/gpu_kcache_check
    step gpu_linear_check ./tests/gpu_linear_check --no-timing
    step gpu_decode_check ./tests/gpu_decode_check
    step gpu_decode_rooms_check ./tests/gpu_decode_rooms_check
    step gpu_dist_check ./tests/gpu_dist_check
fi
if [ "$part" = checks ] || [ "$part" = repro ] || [ "$part" = all ]; then
    step gpu_determinism_check ./tests/gpu_determinism_check --no-timing
    step gpu_repro env OUT="$out/repro" tools/gpu_repro.sh ./ablate
fi
if [ "$part" = repro ]; then
    step determinism_timing ./tests/gpu_determinism_check --timing-only
fi
if [ "$part" = checks ] || [ "$part" = all ]; then
    step memcheck "${CUDA:-/usr/local/cuda}/bin/compute-sanitizer" --tool memcheck --error-exitcode 3 \
        ./ablate train --device cuda --layers 2 --d-model 128 --heads 2 --seq 100 --batch 2 --steps 3 \
        --eval-batches 1
    step memcheck_gdn_par "${CUDA:-/usr/local/cuda}/bin/compute-sanitizer" --tool memcheck \
        --error-exitcode 3 ./ablate train --tune gdn_par=1 --device cuda --attn gdn --layers 2 --d-model 128 --heads 2 --seq 100 \
        --batch 2 --steps 3 --eval-batches 1
    step memcheck_decode "${CUDA:-/usr/local/cuda}/bin/compute-sanitizer" --tool memcheck --error-exitcode 3 \
        ./tests/gpu_decode_check
    # the persistent decode step (--tune dec_fused=2) at batch 1 and at batch 8 past 1024 slots
    step memcheck_persist_b1 "${CUDA:-/usr/local/cuda}/bin/compute-sanitizer" --tool memcheck --error-exitcode 3 \
        build/decode_step gqa 1 96 8 2
    step memcheck_persist_b8 "${CUDA:-/usr/local/cuda}/bin/compute-sanitizer" --tool memcheck --error-exitcode 3 \
        build/decode_step gqa 8 1200 4 2
fi
if [ "$part" = first ]; then
    for m in dsa gdn gqa mla mga identity; do
        step "first_$m" ./ablate bench --only train --attn "$m" --steps 1 --kernel-cache off
        grep -m1 "first step" "$out/first_$m.log" | sed "s/^ */first_$m: /" >> "$summary"
    done
fi
if [ "$part" = wide ]; then
    # the checks first: a timing of a kernel that fails them decides nothing
    step wide_gdn_check timeout 150 ./tests/gpu_linear_check --wide-only
    step wide_gdn_timing timeout 100 ./tests/gpu_linear_check --heads-timing
    step wide_attn_check timeout 260 ./tests/gpu_attn_check --no-timing --wide-only
    step wide_attn_timing timeout 200 ./tests/gpu_attn_check --timing-table --wide-only
fi
if [ "$part" = dist ]; then
    ngpu=$(nvidia-smi -L 2> /dev/null | grep -c '^GPU ')
    step gpu_dist_check ./tests/gpu_dist_check
    if [ "$ngpu" -ge 1 ]; then
        step bench_dp ./ablate bench --gpus "$ngpu" --steps 20
    else
        printf '%-28s no GPU listed by nvidia-smi -L\n' bench_dp >> "$summary"
    fi
fi
if [ "$part" = timing ] || [ "$part" = all ]; then
    step linear_timing ./tests/gpu_linear_check --timing-only
    step determinism_timing ./tests/gpu_determinism_check --timing-only
    step sparse_timing ./tests/gpu_sparse_check --timing-only
    step attn_timing ./tests/gpu_attn_check --timing-only
    step bench_mech ./ablate bench --only mech
    step bench_models ./ablate bench --only train --attn gqa,gdn,dsa
    # the cost of determinism: the same models with the order-dependent variants
    step bench_models_nondet ./ablate bench --only train --attn gqa,gdn,dsa --nondeterministic
    step bench_gdn_par ./ablate bench --tune gdn_par=1 --only train --attn gdn --profile
    step bench_decode ./ablate bench --only decode
    step decode_trace ./build/decode_trace 1 768
fi
echo
echo "summary (logs in $out):"
cat "$summary"
