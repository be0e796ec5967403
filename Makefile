# ablate: two builds from one source, and the tests.
#   make            both builds (ablate: CUDA; ablate-cpu: no CUDA dependency)
#   make test       NVRTC compile check of every kernel + the CPU test suite
#   make gpucheck   on a GPU machine: every kernel and a training step vs the CPU reference
CC      ?= cc
CUDA    ?= /usr/local/cuda
CFLAGS  ?= -O2 -Wall -Wextra -Wno-unknown-pragmas -I.
OPENMP  ?= -fopenmp
CUDA_INC = -I$(CUDA)/include
# the driver library is linked against its stub here; the real one is found at run time
CUDA_LIB = -L$(CUDA)/lib64 -L$(CUDA)/lib64/stubs -Wl,-rpath,$(CUDA)/lib64 -lcuda -lnvrtc -lcublasLt -lcublas
HEADERS  = ops.h attn.h smollm.h train.h data.h study.h gpu.h kernels.cu.h kernels_attn.cu.h

all: ablate ablate-cpu examples/train_tiny

ablate: ablate.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) ablate.c -o $@ $(CUDA_LIB) -lm

ablate-cpu: ablate.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_NO_CUDA ablate.c -o $@ -lm

examples/train_tiny: examples/train_tiny.c $(HEADERS)
	$(CC) $(CFLAGS) -DABLATE_NO_CUDA examples/train_tiny.c -o $@ -lm

tests/run_tests: tests/run_tests.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_REAL=double -DABLATE_NO_CUDA tests/run_tests.c -o $@ -lm

tests/nvrtc_compile: tests/nvrtc_compile.c $(HEADERS)
	$(CC) $(CFLAGS) $(CUDA_INC) tests/nvrtc_compile.c -o $@ $(CUDA_LIB) -lm

# more CPU test programs (tests/test_NAME.c, float build, each ending "N passed, N failed")
EXTRA_TESTS = tests/test_study
tests/test_%: tests/test_%.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) -DABLATE_NO_CUDA $< -o $@ -lm

# every checker writes a log; run_tests prints its own checks, then the total of all
test: all tests/run_tests tests/nvrtc_compile $(EXTRA_TESTS)
	./tests/nvrtc_compile > tests/nvrtc_compile.log 2>&1; tail -n 5 tests/nvrtc_compile.log
	for t in $(EXTRA_TESTS); do ./$$t > $$t.log 2>&1; grep -E "^FAIL" $$t.log; tail -n 1 $$t.log; done; true
	./tests/run_tests ./ablate-cpu --count-from tests/nvrtc_compile.log $(foreach t,$(EXTRA_TESTS),--count-from $(t).log)

GPU_CHECKS = tests/gpu_ops_check tests/gpu_attn_check tests/gpu_check
tests/gpu_%: tests/gpu_%.c $(HEADERS)
	$(CC) $(CFLAGS) $(OPENMP) $(CUDA_INC) $< -o $@ $(CUDA_LIB) -lm

# each kernel vs the CPU reference, a training step vs the CPU path, then
# compute-sanitizer memcheck on a short training run
gpucheck: $(GPU_CHECKS) ablate
	./tests/gpu_ops_check
	./tests/gpu_attn_check
	./tests/gpu_check
	$(CUDA)/bin/compute-sanitizer --tool memcheck --error-exitcode 3 ./ablate train --device cuda \
	    --layers 2 --d-model 128 --heads 2 --seq 100 --batch 2 --steps 3 --eval-batches 1

clean:
	rm -f ablate ablate-cpu examples/train_tiny tests/run_tests tests/nvrtc_compile $(GPU_CHECKS) $(EXTRA_TESTS) tests/*.log

.PHONY: all test gpucheck clean
