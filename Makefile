# ablate: two builds from one source, and the tests.
#   make            both builds (ablate: CUDA, -DABLATE_CUDA; ablate-cpu: no CUDA dependency) and, when it can,
#                   the default corpus data/corpus.txt (see "the default corpus" below)
#   make test       NVRTC compile check of every kernel + the CPU test suite + the README's examples
#   make gpucheck   on a GPU machine: every kernel and a training step vs the CPU reference
#   make corpus     data/corpus.txt, the default training text (the King James Bible, public domain)
#   make hfcheck    exported checkpoints load in Hugging Face transformers with ablate's loss and
#                   greedy text (tools/hfcheck.py; installs torch & co. into build/hfvenv from PyPI)
#   make fuzz       the tokenizer.json, shard and study spec parsers and the checkpoint loaders
#                   (safetensors, train.state, MANIFEST) under libFuzzer (clang), FUZZ_SECONDS each
CC      ?= cc
# NVIDIA's toolkit, else Debian's nvidia-cuda-toolkit (headers in /usr/include), else none
CUDA    ?= $(firstword $(patsubst %/include/nvrtc.h,%,$(wildcard /usr/local/cuda/include/nvrtc.h /usr/include/nvrtc.h)) /usr/local/cuda)
CFLAGS  ?= -O2 -Wall -Wextra -Wno-unknown-pragmas -I.
OPENMP  ?= -fopenmp
# the GPU is opt-in: -DABLATE_CUDA builds the CUDA path (without it the headers are CPU-only and
# need no CUDA library); NVRTC compiles the kernels against the headers of the toolkit built with
# (ablate: $CUDA_HOME overrides it at run time)
CUDA_INC = -DABLATE_CUDA -I$(CUDA)/include -DGPU_CUDA_INCLUDE='"$(CUDA)/include"'
# no -lcuda: gpu.h opens the driver library (libcuda.so.1, installed with the NVIDIA driver)
# with dlopen at run time, so the GPU build starts without it; -ldl for glibc before 2.34
CUDA_LIB = -L$(CUDA)/lib64 -Wl,-rpath,$(CUDA)/lib64 -lnvrtc -lcublasLt -lcublas -ldl
# every room under attn/ (a new mechanism's header is a dependency without an edit here)
HEADERS  = ops.h attn.h smollm.h train.h dist.h ckpt.h data.h data_unicode.h study.h export.h eval.h gpu.h kernels.cu.h $(wildcard attn/*.h) \
           tests/gpu_test.h tests/check.h

# without a CUDA toolkit (no nvrtc.h under $(CUDA)) the GPU build and the NVRTC compile check
# are skipped, with one line saying so; the CPU build and its tests need only a C compiler
HAVE_CUDA := $(wildcard $(CUDA)/include/nvrtc.h)
ifeq ($(HAVE_CUDA),)
NVRTC_CHECK =
all: ablate-cpu examples/train_tiny default-corpus
	@echo "make: no CUDA toolkit at $(CUDA) ($(CUDA)/include/nvrtc.h is missing): built ablate-cpu only (CUDA=DIR for the GPU build)"
else
NVRTC_CHECK = tests/nvrtc_compile
all: ablate ablate-cpu examples/train_tiny default-corpus
endif

ablate: ablate.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) ablate.c -o $@ $(CUDA_LIB) -lm

ablate-cpu: ablate.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) ablate.c -o $@ -lm

examples/train_tiny: examples/train_tiny.c $(HEADERS)
	$(CC) $(CFLAGS) examples/train_tiny.c -o $@ -lm

tests/run_tests: tests/run_tests.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double tests/run_tests.c -o $@ -ldl -lm

tests/nvrtc_compile: tests/nvrtc_compile.c $(HEADERS)
	$(CC) $(CFLAGS) $(CUDA_INC) tests/nvrtc_compile.c -o $@ $(CUDA_LIB) -lpthread -lm
# gpu.h's on-disk kernel cache and parallel compiles: NVRTC only, no GPU (make test runs it when
# there is a CUDA toolkit)
tests/test_kcache: tests/test_kcache.c $(HEADERS)
	$(CC) $(CFLAGS) $(CUDA_INC) tests/test_kcache.c -o $@ $(CUDA_LIB) -lpthread -lm

# more CPU test programs (tests/test_NAME.c, float build, each ending "N passed, N failed")
EXTRA_TESTS = tests/test_export tests/test_study tests/test_plots tests/test_data tests/test_sparse tests/test_gdn tests/test_attn_pattern tests/test_inputs tests/test_faults tests/test_ckpt tests/test_oom tests/test_hier tests/test_decode tests/test_dropout tests/test_dist
ifneq ($(HAVE_CUDA),)
EXTRA_TESTS += tests/test_kcache
endif
# attn/dsa.h's finite-difference checks need double precision (a more specific rule
# than the pattern below)
tests/test_sparse: tests/test_sparse.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# attn/gdn.h's (Gated DeltaNet) finite-difference checks: double precision too
tests/test_gdn: tests/test_gdn.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# attn/hier.h's (multi-scale attention) finite-difference checks: double precision too
tests/test_hier: tests/test_hier.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# ops.h's sparse attention patterns (OpsPattern): gradchecks in double precision too
tests/test_attn_pattern: tests/test_attn_pattern.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# generation: decode == the full forward to 1e-9 relative, in double precision too
tests/test_decode: tests/test_decode.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# dropout's ops (attention, residual): fixed-mask gradchecks in double precision too
tests/test_dropout: tests/test_dropout.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
# data parallel on CPU ranks: 2 ranks == 1 process with grad_accum 2 to 1e-12, in double precision
tests/test_dist: tests/test_dist.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double $< -o $@ -lm
tests/test_%: tests/test_%.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) $< -o $@ -lm
# the checkpoint hash's speed (not in make test): tests/bench_hash
tests/bench_hash: tests/bench_hash.c ckpt.h
	$(CC) $(CFLAGS) $< -o $@

# shell scripts in make test, each ending "N passed, N failed" too: the README's ./ablate-cpu
# examples and ini specs, shrunk (tests/readme_examples.sh), and make's fallbacks without a
# CUDA toolkit or the bible command (tests/make_fallbacks.sh), and every library header built on
# its own under -std=c99 -pedantic (tests/headers_alone.sh), and tools/peers.py (the PyTorch side
# of the bench) against `ablate bench --dry-run`'s shapes and FLOP counts (tests/peers_dryrun.sh),
# and tools/ncu_decode.sh's summary of an Nsight Compute CSV (tests/ncu_summary.sh), and the sparse
# launchers against their module table (tests/kernel_parts.sh)
SCRIPT_TESTS = tests/readme_examples.sh tests/make_fallbacks.sh tests/headers_alone.sh tests/peers_dryrun.sh \
               tests/ncu_summary.sh tests/readme_figures.sh tests/kernel_parts.sh

# every checker writes a log; run_tests prints its own checks, then the total of all
# (nvrtc_compile's "[k/n] ..." lines are teed to the terminal as progress: it takes minutes)
test: all tests/run_tests $(NVRTC_CHECK) $(EXTRA_TESTS)
	$(if $(NVRTC_CHECK),@echo "nvrtc_compile: every kernel specialization to PTX (a few minutes)"; ./tests/nvrtc_compile 2>&1 | tee tests/nvrtc_compile.log,@echo "make test: no CUDA toolkit: the NVRTC compile check of the kernels is skipped")
	for t in $(EXTRA_TESTS); do echo "$$t ..."; ./$$t > $$t.log 2>&1; grep -E "^FAIL" $$t.log; tail -n 1 $$t.log; done; true
	for t in $(SCRIPT_TESTS); do echo "$$t ..."; $$t ./ablate-cpu > $$t.log 2>&1; grep -E "^FAIL" $$t.log; tail -n 1 $$t.log; done; true
	./tests/run_tests ./ablate-cpu $(if $(NVRTC_CHECK),--count-from tests/nvrtc_compile.log) $(foreach t,$(EXTRA_TESTS) $(SCRIPT_TESTS),--count-from $(t).log)

GPU_CHECKS = tests/gpu_ops_check tests/gpu_attn_check tests/gpu_check tests/gpu_sparse_check tests/gpu_kcache_check \
             tests/gpu_linear_check tests/gpu_determinism_check tests/gpu_decode_check \
             tests/gpu_decode_rooms_check tests/gpu_dist_check
tests/gpu_%: tests/gpu_%.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) $< -o $@ $(CUDA_LIB) -lm

# attn/gdn.cu.h's kernels emulated on the CPU (fibers as CUDA threads; no GPU needed,
# about a minute on 2 cores): their indexing, barriers and mma fragments vs attn/gdn.h
build/emu_linear_kernels.inc: tests/emu_linear_dump.c tests/emu_dump_common.h attn/gdn.cu.h gpu.h kernels.cu.h
	mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_linear_dump.c -o build/emu_linear_dump $(CUDA_LIB) -lm
	./build/emu_linear_dump > $@.tmp && mv $@.tmp $@
tests/emu_linear0 tests/emu_linear1: tests/emu_linear.c tests/emu_fiber.h build/emu_linear_kernels.inc attn/gdn.h ops.h
	$(CC) $(CFLAGS) -Ibuild -DGDN_MMA=$(subst tests/emu_linear,,$@) -DGDN_PAR=2 tests/emu_linear.c -o $@ -lpthread -lm
# attn/dense.cu.h's sparse-pattern tile loops with the kernels' own helpers (kernels.cu.h's
# ablate_pattern.cuh; seconds)
build/emu_attn_pattern_helpers.inc: tests/emu_attn_pattern_dump.c tests/emu_dump_common.h gpu.h kernels.cu.h
	mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_attn_pattern_dump.c -o build/emu_attn_pattern_dump $(CUDA_LIB) -lm
	./build/emu_attn_pattern_dump > $@.tmp && mv $@.tmp $@
tests/emu_attn_pattern0 tests/emu_attn_pattern1: tests/emu_attn_pattern.c build/emu_attn_pattern_helpers.inc
	$(CC) $(CFLAGS) -Ibuild -DEMU_SRC=$(subst tests/emu_attn_pattern,,$@) tests/emu_attn_pattern.c -o $@ -lm
# attn/decode.cu.h's MLA, MGA, GDN and DSA decode kernels (DECODE_ROOMS_SRC) emulated the same way
# (fibers as threads, tests/emu_cuda.h; about 10 seconds on 2 cores)
build/emu_decode_kernels.inc: tests/emu_decode_dump.c tests/emu_dump_common.h attn/decode.cu.h attn/decode_fused.cu.h \
                              gpu.h kernels.cu.h
	mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_decode_dump.c -o build/emu_decode_dump $(CUDA_LIB) -lm
	./build/emu_decode_dump > $@.tmp && mv $@.tmp $@
tests/emu_decode: tests/emu_decode.c tests/emu_cuda.h tests/emu_fiber.h build/emu_decode_kernels.inc $(HEADERS)
	$(CC) $(CFLAGS) -Ibuild tests/emu_decode.c -o $@ -lpthread -lm
# attn/decode_fused.cu.h's kernels (the fused decode step) and attn/decode.cu.h's dense-room split-K
# decode attention (DECODE_SRC) the same way: emu_decode_dump fused | dense
build/emu_fused_kernels.inc build/emu_dense_kernels.inc: build/emu_%_kernels.inc: tests/emu_decode_dump.c \
        tests/emu_dump_common.h attn/decode_fused.cu.h attn/decode.cu.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_decode_dump.c -o build/emu_$*_dump $(CUDA_LIB) -lm
	./build/emu_$*_dump $* > $@.tmp && mv $@.tmp $@
tests/emu_fused tests/emu_dense: tests/emu_%: tests/emu_%.c tests/emu_cuda.h tests/emu_fiber.h build/emu_%_kernels.inc $(HEADERS)
	$(CC) $(CFLAGS) -Ibuild $< -o $@ -lpthread -lm
# attn/hier.cu.h's kernels (the multi-scale room's coarse branch) the same way
build/emu_hier_kernels.inc: tests/emu_hier_dump.c tests/emu_dump_common.h attn/hier.cu.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_hier_dump.c -o build/emu_hier_dump $(CUDA_LIB) -lm
	./build/emu_hier_dump > $@.tmp && mv $@.tmp $@
tests/emu_hier: tests/emu_hier.c tests/emu_cuda.h tests/emu_fiber.h build/emu_hier_kernels.inc $(HEADERS)
	$(CC) $(CFLAGS) -Ibuild tests/emu_hier.c -o $@ -lpthread -lm
# kernels.cu.h's common training kernels (embedding, RMSNorm, RoPE, SwiGLU, cross-entropy rows,
# the optimizer's) the same way, against ops.h in double (a few seconds on 2 cores)
build/emu_ops_kernels.inc: tests/emu_ops_dump.c tests/emu_dump_common.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) -Itests tests/emu_ops_dump.c -o build/emu_ops_dump $(CUDA_LIB) -lm
	./build/emu_ops_dump > $@.tmp && mv $@.tmp $@
tests/emu_ops: tests/emu_ops.c tests/emu_cuda.h tests/emu_fiber.h build/emu_ops_kernels.inc $(HEADERS)
	$(CC) $(CFLAGS) -Ibuild tests/emu_ops.c -o $@ -lpthread -lm
# attn/dsa.cu.h's sparse attention kernels (forward, both backwards, probs) at head dims 64, 72,
# 200 and 256, and the selection's (indexer scores, top-k, the mask), emulated likewise with
# ldmatrix, cp.async and mma.sync (tests/emu_cuda_cxx.h); C++, since the kernel sources have
# templates (about 45 seconds on 2 cores)
CXX ?= g++
build/emu_sparse_kernels.inc: tests/emu_sparse_dump.c tests/emu_dump_common.h attn/dsa.cu.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) -Itests tests/emu_sparse_dump.c -o build/emu_sparse_dump $(CUDA_LIB) -lm
	./build/emu_sparse_dump > $@.tmp && mv $@.tmp $@
# (-Wno-maybe-uninitialized: idx_topk's np / nn, which the one lane that finds the digit sets)
tests/emu_sparse: tests/emu_sparse.cc tests/emu_cuda_cxx.h tests/emu_fiber.h build/emu_sparse_kernels.inc
	$(CXX) -O1 -std=c++17 -Wall -Wno-unknown-pragmas -Wno-maybe-uninitialized -Ibuild -Itests $< -o $@ -lpthread -lm
# attn/decode_persist.cu.h's persistent decode step (every layer and the LM head in one kernel), as
# one block, the same way against a decode step in double (C++: the source has templates)
build/emu_persist_kernels.inc: tests/emu_persist_dump.c tests/emu_dump_common.h attn/decode_persist.cu.h \
                               attn/decode.cu.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) -Itests tests/emu_persist_dump.c -o build/emu_persist_dump $(CUDA_LIB) -lm
	./build/emu_persist_dump > $@.tmp && mv $@.tmp $@
tests/emu_persist: tests/emu_persist.cc tests/emu_cuda_cxx.h tests/emu_fiber.h build/emu_persist_kernels.inc
	$(CXX) -O1 -std=c++17 -Wall -Wno-unknown-pragmas -Wno-maybe-uninitialized -Ibuild -Itests $< -o $@ -lpthread -lm
# attn/dense.cu.h's mma.sync flash kernels (forward, backward with the fixed-order dQ) at head dims
# 40 to 256, GQA, windows and sparse patterns, the same way (about 12 seconds on 2 cores)
build/emu_flash_kernels.inc: tests/emu_flash_dump.c tests/emu_dump_common.h attn/dense.cu.h gpu.h kernels.cu.h
	@mkdir -p build
	$(CC) $(CFLAGS) $(CUDA_INC) tests/emu_flash_dump.c -o build/emu_flash_dump $(CUDA_LIB) -lm
	./build/emu_flash_dump > $@.tmp && mv $@.tmp $@
tests/emu_flash: tests/emu_flash.cc tests/emu_cuda_cxx.h tests/emu_fiber.h build/emu_flash_kernels.inc
	$(CXX) -O1 -std=c++17 -Wall -Wno-unknown-pragmas -Ibuild -Itests $< -o $@ -lpthread -lm
emucheck: tests/emu_linear0 tests/emu_linear1 tests/emu_attn_pattern0 tests/emu_attn_pattern1 tests/emu_decode tests/emu_fused \
          tests/emu_hier tests/emu_dense tests/emu_sparse tests/emu_flash tests/emu_ops tests/emu_persist
	./tests/emu_linear0
	./tests/emu_linear1
	./tests/emu_attn_pattern0
	./tests/emu_attn_pattern1
	./tests/emu_decode
	./tests/emu_fused
	./tests/emu_hier
	./tests/emu_dense
	./tests/emu_sparse
	./tests/emu_flash
	./tests/emu_ops
	./tests/emu_persist

# each kernel vs the CPU reference, a training step vs the CPU path, bit-reproducible
# training (the same run twice in one process, then through the CLI: two runs and a
# killed-and-resumed study), then compute-sanitizer memcheck on a short training run
# the GPU check programs built but not run (CI: they need no driver to build)
# tools/ncu_decode.sh's driver: one GPU decode configuration for a profiler
build/decode_step: tools/decode_step.c $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) $< -o $@ $(CUDA_LIB) -lm

# where the persistent decode step's time goes, phase by phase (its kernel's clock trace)
build/decode_trace: tools/decode_trace.c $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) $< -o $@ $(CUDA_LIB) -lm

# what a first step compiles, module by module, and each module's NVRTC time (no GPU needed)
build/nvrtc_times: tools/nvrtc_times.c $(HEADERS)
	@mkdir -p build
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) $< -o $@ $(CUDA_LIB) -lm

gpuprogs: $(GPU_CHECKS) build/decode_step build/decode_trace build/nvrtc_times

gpucheck: $(GPU_CHECKS) ablate
	./tests/gpu_ops_check
	./tests/gpu_attn_check
	./tests/gpu_check
	./tests/gpu_sparse_check
	./tests/gpu_kcache_check
	./tests/gpu_linear_check
	./tests/gpu_decode_rooms_check
	./tests/gpu_determinism_check --no-timing
	./tests/gpu_dist_check
	tools/gpu_repro.sh ./ablate
	$(CUDA)/bin/compute-sanitizer --tool memcheck --error-exitcode 3 ./ablate train --device cuda \
	    --layers 2 --d-model 128 --heads 2 --seq 100 --batch 2 --steps 3 --eval-batches 1

clean:
	rm -f ablate ablate-cpu examples/train_tiny tests/bench_hash tests/fuzz_data tests/fuzz_spec tests/fuzz_ckpt tests/run_tests tests/nvrtc_compile $(GPU_CHECKS) $(EXTRA_TESTS) tests/*.log
	rm -f tests/emu_linear0 tests/emu_linear1 build/emu_linear_dump build/emu_linear_kernels.inc
	rm -f tests/emu_decode build/emu_decode_dump build/emu_decode_kernels.inc tests/emu_fused build/emu_fused_dump build/emu_fused_kernels.inc tests/emu_hier build/emu_hier_dump build/emu_hier_kernels.inc tests/emu_dense build/emu_dense_dump build/emu_dense_kernels.inc
	rm -f tests/emu_ops build/emu_ops_dump build/emu_ops_kernels.inc
	rm -f tests/emu_persist build/emu_persist_dump build/emu_persist_kernels.inc

# the default corpus: Debian's bible-kjv package prints the King James Version (1611, public
# domain; 4.1 MB, 31,102 verses); the verse labels are stripped. `make` gets it when it can
# (default-corpus: installs bible-kjv when root with apt-get) and otherwise says so in one line
# and goes on: the tool then trains on CORPUS_FALLBACK (study.h's study_default_data).
# `make corpus` fails instead. BIBLE and APT_GET are there for tests/make_fallbacks.sh.
CORPUS          = data/corpus.txt
CORPUS_FALLBACK = /usr/share/common-licenses/GPL-3
BIBLE   ?= bible
APT_GET ?= apt-get
# the shell steps; $(1): what follows the one-line message when the corpus cannot be made
get_corpus = command -v $(BIBLE) >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v $(APT_GET) >/dev/null || \
	{ echo "make: installing bible-kjv (the default corpus, $(CORPUS))"; \
	  { $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq bible-kjv; } >/dev/null 2>&1; }; \
	if command -v $(BIBLE) >/dev/null; then \
	    mkdir -p $(dir $(CORPUS)) && $(BIBLE) -f gen1:1-rev22:21 | sed -E 's/^[^ ]*[0-9]+:[0-9]+ //' > $(CORPUS).tmp && \
	    mv $(CORPUS).tmp $(CORPUS) && echo "make: $(CORPUS): the King James Bible, $$(wc -c < $(CORPUS)) bytes"; \
	else \
	    echo "make: no $(CORPUS): the '$(BIBLE)' command is missing and bible-kjv could not be installed (that needs root, apt-get and a network); ablate trains on $(CORPUS_FALLBACK) instead; for the default corpus: apt-get install bible-kjv && make corpus"; \
	    $(1); \
	fi
corpus: $(CORPUS)
$(CORPUS):
	@$(call get_corpus,exit 1)
default-corpus:
	@[ -f $(CORPUS) ] || { $(call get_corpus,true); }

FUZZ_SECONDS ?= 30
tests/fuzz_data: tests/fuzz_data.c data.h data_unicode.h
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. $< -o $@
tests/fuzz_spec: tests/fuzz_spec.c $(HEADERS)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. $< -o $@ -lm
# (smollm_init measures its activations by laying them out from a null base: pointer-overflow
# is left out of the checks for that)
tests/fuzz_ckpt: tests/fuzz_ckpt.c $(HEADERS)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize=pointer-overflow -fno-sanitize-recover=all \
	    -I. $< -o $@ -lm
# seeds: a small trained tokenizer.json, a byte-level shard, a uint32 shard without a vocabulary,
# the example specs and a tiny run's checkpoint (its model.safetensors, train.state, MANIFEST); any crash fails the
# target (the shard target also writes each input to /tmp and opens it with data_open)
FUZZ_CKPT = build/fuzz/run/attn-mha_seed1337/ckpt-00000003
fuzz: tests/fuzz_data tests/fuzz_ckpt tests/fuzz_spec ablate-cpu
	mkdir -p build/fuzz/json build/fuzz/shard build/fuzz/text build/fuzz/safetensors build/fuzz/state build/fuzz/manifest build/fuzz/spec
	cp tests/fuzz_seeds/*.ini build/fuzz/spec/
	head -c 20000 /usr/share/common-licenses/GPL-3 > build/fuzz/text/gpl.txt
	./ablate-cpu tokenizer train --vocab 300 --out build/fuzz/json/seed.json build/fuzz/text/gpl.txt > /dev/null
	# the same with ByteLevel's add_prefix_space (decoding keeps the added spaces)
	sed 's/"add_prefix_space": false/"add_prefix_space": true/' build/fuzz/json/seed.json > build/fuzz/json/seed_prefix.json
	./ablate-cpu tokenize --tokenizer byte --force --out build/fuzz/shard build/fuzz/text/gpl.txt > /dev/null 2>&1
	# a uint32 shard whose header declares no vocabulary (8 tokens, the last 0xffffffff): data_open's
	# vocabulary-from-ids path
	{ printf '\241\331\064\001\007\000\000\000\010\000\000\000'; head -c 1012 /dev/zero; \
	  head -c 28 /dev/zero; printf '\377\377\377\377'; } > build/fuzz/shard/u32_novocab.bin
	rm -rf build/fuzz/run
	./ablate-cpu run --axes attn=mha --layers 1 --d-model 16 --heads 2 --seq 16 --batch 2 --steps 4 --checkpoint-every 1 \
	    --eval-batches 1 --device cpu --keep-checkpoints 1 --data build/fuzz/text/gpl.txt --out build/fuzz/run --quiet
	cp $(FUZZ_CKPT)/model.safetensors build/fuzz/safetensors/seed
	cp $(FUZZ_CKPT)/train.state build/fuzz/state/seed
	cp $(FUZZ_CKPT)/MANIFEST build/fuzz/manifest/seed
	for t in json shard safetensors state manifest; do \
	    case $$t in json|shard) bin=./tests/fuzz_data;; *) bin=./tests/fuzz_ckpt;; esac; \
	    $$bin -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	        -print_final_stats=1 -artifact_prefix=build/fuzz/ build/fuzz/$$t -ignore_remaining_args=1 target=$$t \
	        ckpt=$(FUZZ_CKPT) > build/fuzz/$$t.log 2>&1 \
	        || { tail -n 40 build/fuzz/$$t.log; echo "fuzz $$t: FAILED (crash input in build/fuzz/)"; exit 1; }; \
	    echo "fuzz $$t: $$(awk '/^stat::number_of_executed_units/ {print $$2}' build/fuzz/$$t.log) runs in $(FUZZ_SECONDS) s, no crash"; \
	done
	./tests/fuzz_spec -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -max_len=8192 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/spec- build/fuzz/spec > build/fuzz/spec.log 2>&1 \
	    || { tail -n 40 build/fuzz/spec.log; echo "fuzz spec: FAILED (crash input in build/fuzz/)"; exit 1; }
	echo "fuzz spec: $$(awk '/^stat::number_of_executed_units/ {print $$2}' build/fuzz/spec.log) runs in $(FUZZ_SECONDS) s, no crash"
	rm -rf build/fuzz/scratch-*

.PHONY: all test gpucheck gpuprogs emucheck clean corpus default-corpus fuzz hfcheck

# exported checkpoints in Hugging Face transformers (tools/hfcheck.py: loss to 1e-4 and the same
# greedy text for Llama MHA/GQA/MQA, Mistral's window, Qwen3's QK-norm). Its Python packages live in
# a virtual environment, HFVENV, made when missing: PyPI's Linux torch brings its CUDA libraries
# (about 2 minutes and 5.6 GB here); the check itself takes about 2 minutes on 2 cores. Without
# python3's venv or PyPI it says SKIPPED and why, and passes: it cannot check anything then.
HFVENV ?= build/hfvenv
HFPY = $(HFVENV)/bin/python
hfcheck: ablate-cpu
	@if ! $(HFPY) -c "import torch, transformers, tokenizers, safetensors" 2>/dev/null; then \
	    echo "hfcheck: installing torch, transformers, tokenizers, safetensors into $(HFVENV) (pip, PyPI)"; \
	    python3 -m venv $(HFVENV) && $(HFVENV)/bin/pip install -q torch transformers tokenizers safetensors \
	    || { echo "hfcheck: SKIPPED: could not create $(HFVENV) with torch and transformers (python3 -m venv, pip install from PyPI); nothing was checked"; exit 0; }; \
	fi; \
	text=data/corpus.txt; [ -f $$text ] || text=/usr/share/common-licenses/GPL-3; \
	$(HFPY) tools/hfcheck.py ./ablate-cpu $$text build/hfcheck
