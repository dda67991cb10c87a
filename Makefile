# clipc — build, test, benchmark and demo.
#
#   make            CPU build: build/clipc, build/libclipc.a, build/libclipc.so (python/clipc loads it)
#   make CUDA=1     adds the CUDA backend (build-cuda/)
#   make MPI=0      without Open MPI (found by default when mpicc's <mpi.h> compiles): single-process stub
#   make test       unit tests (release and ASan+UBSan), parity tests, CLI tests
#   make bench      benchmarks against the reference tools -> benchmarks/RESULTS.md
#   make demo       installs missing packages, builds, runs the demo
#
# Sources are found by wildcard: every .c in engine/ kernels/ train/ index/ data/ goes into
# libclipc.a; tools/*.c make the clipc binary; tests/*.c make the unit-test binary.

CC ?= gcc
CUDA ?= 0
SAN ?= 0
PREFIX ?= /usr/local

ifeq ($(SAN),1)
  BUILD ?= build-asan
  OPTFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN = -fsanitize=address,undefined
else ifeq ($(CUDA),1)
  BUILD ?= build-cuda
  OPTFLAGS = -O2 -g
else
  BUILD ?= build
  OPTFLAGS = -O2 -g
endif

CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS += -std=c11 $(OPTFLAGS) -fopenmp -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -MMD -MP -Wno-format-truncation -Wno-format-zero-length
LDLIBS += -lopenblas -lturbojpeg -ljpeg -lpng -lwebpdemux -lwebp -lgif -ltiff -lz -lcjson -lpcre2-8 -lutf8proc -lmicrohttpd -lm -lpthread
LDFLAGS += -fopenmp $(LDSAN)

# MPI for data-parallel training (engine/comm.c): mpicc's flags where Open MPI's headers are installed,
# else (or with MPI=0) the single-process stub
MPI_INCLUDE := $(shell mpicc --showme:compile 2>/dev/null)
MPI ?= $(shell printf '\043include <mpi.h>\n' | $(CC) $(MPI_INCLUDE) -E -x c - >/dev/null 2>&1 && echo 1 || echo 0)
ifeq ($(MPI),1)
  COMM_CFLAGS := $(MPI_INCLUDE)
  MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
else
  COMM_CFLAGS := -DCLIPC_NO_MPI
  MPI_LIBS :=
endif
LDLIBS += $(MPI_LIBS)

LIB_SRCS := $(wildcard engine/*.c kernels/*.c train/*.c index/*.c data/*.c)
TOOL_SRCS := $(wildcard tools/*.c)
TEST_SRCS := $(wildcard tests/*.c)
BENCH_SRCS := $(wildcard benchmarks/*/*.c)

ifeq ($(CUDA),1)
  # nvcc from PATH (its toolkit is CUDA_HOME), else /usr/local/cuda (nvcc is often not on PATH)
  NVCC_ON_PATH := $(shell command -v nvcc 2>/dev/null)
  CUDA_HOME ?= $(if $(NVCC_ON_PATH),$(patsubst %/bin/nvcc,%,$(realpath $(NVCC_ON_PATH))),/usr/local/cuda)
  NVCC ?= $(if $(NVCC_ON_PATH),$(NVCC_ON_PATH),$(CUDA_HOME)/bin/nvcc)
  CUDA_ARCH ?= -gencode arch=compute_90,code=sm_90
  NVCCFLAGS ?= -O3 -std=c++17 $(CUDA_ARCH) -I. -Xcompiler -fPIC,-Wall --expt-relaxed-constexpr -lineinfo $(CUDA_EXTRA_CFLAGS)
  CU_SRCS := $(wildcard kernels/cuda/*.cu engine/cuda/*.cu)
  CPPFLAGS += -DCLIPC_CUDA -I$(CUDA_HOME)/include
  # CUDA_EXTRA_LDFLAGS: where cuBLAS lives when it is not in the toolkit (-L... -Wl,-rpath,...)
  CUDA_LIBS := $(CUDA_EXTRA_LDFLAGS) -L$(CUDA_HOME)/lib64 -L$(CUDA_HOME)/lib -lcublas -lcublasLt -lcudart -lstdc++ -ldl -lrt \
	-Wl,-rpath,$(CUDA_HOME)/lib64
  LDLIBS += $(CUDA_LIBS)
  # GPU check build (tests/gpu/run.sh): engine + kernels + CUDA only, so it links on images that
  # lack the -dev packages of the full build; without OpenBLAS headers, a reference cblas stands in.
  HAVE_CBLAS := $(shell printf '\043include <cblas.h>\n' | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
  ifneq ($(HAVE_CBLAS),1)
    CPPFLAGS += -Itests/gpu/shim
    CORE_EXTRA_SRCS := tests/gpu/shim/cblas_ref.c
    CORE_BLAS :=
  else
    CORE_BLAS := -lopenblas
  endif
  CORE_OBJS = $(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/*.c kernels/*.c) $(CORE_EXTRA_SRCS)) $(CU_SRCS:%.cu=$(BUILD)/%.cu.o)
  DEV_BINS := $(patsubst kernels/cuda/dev/%.cu,$(BUILD)/dev/%,$(filter-out kernels/cuda/dev/common.cuh,$(wildcard kernels/cuda/dev/*.cu)))
  CUDA_BENCH_BINS := $(patsubst benchmarks/cuda/%.cu,$(BUILD)/bench/cuda/%,$(wildcard benchmarks/cuda/*.cu))
endif

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(CU_SRCS:%.cu=$(BUILD)/%.cu.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TOOL_OBJS += $(BUILD)/gen/web_page.o
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
BENCH_BINS := $(BENCH_SRCS:benchmarks/%.c=$(BUILD)/bench/%)

.PHONY: all python-lib test test-unit bench bench-bins demo install clean deps test-browser gpu-check
all: $(BUILD)/clipc $(BUILD)/libclipc.a
ifneq ($(CUDA),1)
# (CUDA builds: `make CUDA=1 build-cuda/libclipc.so` on request; its link is not yet tried on a GPU machine)
all: $(BUILD)/libclipc.so
endif

# Library objects are position-independent so that libclipc.so can share them with libclipc.a
# (-fno-semantic-interposition: calls inside the library stay direct, as with the default -fPIE).
# The stamp makes a build directory from before this rule recompile its library objects once.
$(LIB_SRCS:%.c=$(BUILD)/%.o): CFLAGS += -fPIC -fno-semantic-interposition
$(LIB_SRCS:%.c=$(BUILD)/%.o): $(BUILD)/.pic-objects
$(BUILD)/engine/comm.o: CPPFLAGS += $(COMM_CFLAGS)
$(BUILD)/.pic-objects:
	@mkdir -p $(dir $@)
	@touch $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -DCLIPC_CUDA -c $< -o $@

$(BUILD)/libclipc.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libclipc.so: $(LIB_OBJS)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libclipc.so -o $@ $^ $(LDLIBS)

$(BUILD)/clipc: $(TOOL_OBJS) $(BUILD)/libclipc.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJS) $(BUILD)/libclipc.a $(LDLIBS)

# clipc serve's web page, compiled in as a C string: tools/web/index.html -> $(BUILD)/gen/web_page.c
# (backslashes, quotes and '?' escaped — the last against trigraphs — one string literal per line)
$(BUILD)/gen/web_page.c: tools/web/index.html
	@mkdir -p $(dir $@)
	@{ echo '/* generated from tools/web/index.html by the Makefile: do not edit */'; echo 'const char cc_web_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/?/\\?/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; echo ';'; } > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_page.o: $(BUILD)/gen/web_page.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/tests/unit: $(TEST_OBJS) $(BUILD)/libclipc.a
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJS) $(BUILD)/libclipc.a $(LDLIBS)

test-unit: $(BUILD)/tests/unit $(BUILD)/clipc

# Each benchmarks/<area>/<name>.c is one program: $(BUILD)/bench/<area>/<name>
$(BUILD)/bench/%: benchmarks/%.c $(BUILD)/libclipc.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libclipc.a $(LDLIBS)

bench-bins: $(BENCH_BINS)

# ---- CUDA: the GPU check program, kernel development files and CUDA benchmarks (CUDA=1) ----
ifeq ($(CUDA),1)
all: gpu-check
gpu-check: $(BUILD)/tests/gpu/check_ops $(BUILD)/tests/gpu/vit_check $(DEV_BINS) $(CUDA_BENCH_BINS)

.PRECIOUS: $(BUILD)/tests/gpu/%.o

$(BUILD)/libclipc_core.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/gpu/%: $(BUILD)/tests/gpu/%.o $(BUILD)/libclipc_core.a
	$(CC) $(LDFLAGS) -o $@ $^ $(CORE_BLAS) $(CUDA_LIBS) $(MPI_LIBS) -lm -lpthread

$(BUILD)/dev/%: kernels/cuda/dev/%.cu kernels/cuda/dev/common.cuh
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -o $@ $< $(CUDA_EXTRA_LDFLAGS) -lcublas -lcublasLt

$(BUILD)/bench/cuda/%: benchmarks/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -o $@ $< $(CUDA_EXTRA_LDFLAGS) -lcublas -lcublasLt
endif

# ---- the CUDA backend on the host emulator (tests/gpu/fake): every build, run by make test ----
FAKE_CU_SRCS := $(wildcard kernels/cuda/*.cu engine/cuda/*.cu)
FAKE_OBJS := $(FAKE_CU_SRCS:%.cu=$(BUILD)/fake/%.o) $(BUILD)/fake/tests/gpu/fake/fake_cuda.o \
	$(BUILD)/fake/tests/gpu/fake/fake_cublas.o
FAKE_CXXFLAGS = -std=c++17 $(OPTFLAGS) -DCC_FAKE_CUDA -I. -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
	-Wno-unknown-pragmas -MMD -MP

$(BUILD)/fake/%.o: %.cu
	@mkdir -p $(dir $@)
	$(CXX) $(FAKE_CXXFLAGS) -x c++ -c $< -o $@

$(BUILD)/fake/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(FAKE_CXXFLAGS) -c $< -o $@

$(BUILD)/tests/gpu/%_fake: $(BUILD)/tests/gpu/%.o $(FAKE_OBJS) $(BUILD)/libclipc.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ifneq ($(CUDA),1)
test-unit: $(BUILD)/tests/gpu/check_ops_fake $(BUILD)/tests/gpu/vit_check_fake
.PRECIOUS: $(BUILD)/tests/gpu/%.o
endif

# ---- fuzzing (tests/fuzz/README.md): libFuzzer targets built with clang in build-fuzz/ ----
#   make fuzz FUZZ_SECONDS=N   builds every tests/fuzz/fuzz_*.c and fuzzes each N seconds on its corpus
#   make fuzz-regress          runs each target over its seed corpus and committed crash reproducers
FUZZ_CC ?= clang
FUZZ_BUILD := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OMP = -fopenmp
FUZZ_CFLAGS = -std=c11 -O1 -g -fno-omit-frame-pointer $(FUZZ_OMP) $(FUZZ_SAN) -I. -D_GNU_SOURCE -MMD -MP -Wall \
	-Wno-unused-parameter -Wno-missing-field-initializers -Wno-unused-function -Wno-unknown-warning-option
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_TOOL_OBJS := $(filter-out $(FUZZ_BUILD)/tools/main.o,$(TOOL_SRCS:%.c=$(FUZZ_BUILD)/%.o)) $(FUZZ_BUILD)/gen/web_page.o

.PHONY: fuzz fuzz-bins fuzz-corpus fuzz-regress
# clang ignores `#pragma GCC target`: the two SIMD kernel files get their ISA from flags (they run only
# where the CPU has it, as in the gcc build)
$(FUZZ_BUILD)/kernels/cpu_ops_avx2.o: FUZZ_ARCH = -mavx2 -mfma -mbmi -mbmi2 -mf16c -mpopcnt
$(FUZZ_BUILD)/kernels/cpu_ops_avx512.o: FUZZ_ARCH = -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma -mbmi \
	-mbmi2 -mf16c -mpopcnt
# clang 14 does not carry a function's target("avx512f") into the OpenMP regions outlined from it:
# kmeans.c is built without OpenMP here (serial; the fuzz targets run one thread anyway)
$(FUZZ_BUILD)/index/kmeans.o: FUZZ_OMP =
# nor does it make the ifunc clones of cpu_ops.c's target_clones(arch=...): the default version only
$(FUZZ_BUILD)/kernels/cpu_ops.o: FUZZ_ARCH = '-Dtarget_clones(...)=unused'
$(FUZZ_BUILD)/engine/comm.o: FUZZ_ARCH = $(COMM_CFLAGS)
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_ARCH) -Wno-unknown-pragmas -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/gen/web_page.o: $(BUILD)/gen/web_page.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/libclipc.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/libtools.a: $(FUZZ_TOOL_OBJS)
	@rm -f $@
	ar rcs $@ $^

# fuzz_embedding_cache and fuzz_meta_tsv #include tools/cmd_index.c (its parsers are static)
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_BUILD)/libtools.a $(FUZZ_BUILD)/libclipc.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fopenmp -fsanitize=fuzzer -o $@ $< $(FUZZ_BUILD)/libtools.a $(FUZZ_BUILD)/libclipc.a $(LDLIBS)

$(FUZZ_BUILD)/gen_seeds: tests/fuzz/gen_seeds.c $(FUZZ_BUILD)/libclipc.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fopenmp -o $@ $< $(FUZZ_BUILD)/libclipc.a $(LDLIBS)

fuzz-bins: $(FUZZ_TARGETS) $(FUZZ_BUILD)/gen_seeds

fuzz-corpus: fuzz-bins
	@tests/fuzz/make_corpus.sh $(FUZZ_BUILD)

fuzz: fuzz-corpus
	@tests/fuzz/run.sh campaign $(FUZZ_SECONDS)

fuzz-regress: fuzz-corpus
	@tests/fuzz/run.sh regress

deps:
	@scripts/install-deps.sh

# The whole suite: release unit tests (with the Python parity tests), the same unit tests under
# ASan+UBSan (slow parity tests skipped), and the CLI tests. Ends with "N passed, M failed".
test: deps
	@$(MAKE) --no-print-directory -j2 all test-unit
	@$(MAKE) --no-print-directory -j2 SAN=1 test-unit
	@tests/run.sh

bench: deps all bench-bins
	@benchmarks/run.sh

demo: deps all
	@scripts/demo.sh

test-browser: deps all
	@tests/browser/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 $(BUILD)/clipc $(DESTDIR)$(PREFIX)/bin/clipc
	install -m 644 $(BUILD)/libclipc.a $(DESTDIR)$(PREFIX)/lib/libclipc.a
	if [ -e $(BUILD)/libclipc.so ]; then install -m 755 $(BUILD)/libclipc.so $(DESTDIR)$(PREFIX)/lib/libclipc.so; fi
	install -m 644 include/clipc.h $(DESTDIR)$(PREFIX)/include/clipc.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' scripts/clipc.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/clipc.pc

# Copies libclipc.so into the Python package, so that `pip install ./python` installs it with it.
python-lib: $(BUILD)/libclipc.so
	cp $(BUILD)/libclipc.so python/clipc/libclipc.so

clean:
	rm -rf build build-asan build-cuda build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
