/* fake_cuda.cc — the fake CUDA runtime and SIMT emulator declared in fake_cuda.h.
 *
 * Emulator: a launch runs its blocks one after another; the threads of a block are fibers
 * (ucontext) of the calling OS thread, switched only at barriers (ctx.sync, warp shuffles, mma),
 * so every run is deterministic. A block barrier releases when every thread of the block has
 * arrived; a warp collective when all 32 lanes have. A thread that finishes while others wait at
 * a barrier, or a state where no fiber can run, is a divergence bug in the body: the launch fails
 * with a message naming the barrier. Values exchanged by warp collectives are double-buffered by
 * barrier generation (a lane can only be one collective ahead of its slowest neighbour).
 */
#include "tests/gpu/fake/fake_cuda.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <map>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FAKE_ASAN 1
#endif

#define FIBER_STACK_BYTES (256 * 1024)
#define MAX_BLOCK_THREADS 1024
#define MAX_WARPS (MAX_BLOCK_THREADS / 32)
#define MAX_SMEM_BYTES (227 * 1024) /* H100 opt-in limit per block */
#define DEFAULT_SMEM_LIMIT (48 * 1024)

static thread_local std::string last_message;
static thread_local cudaError_t last_error = cudaSuccess;
static cc_fake_counters counters;

const char *cc_fake_last_message(void) { return last_message.c_str(); }
cc_fake_counters cc_fake_get_counters(void) { return counters; }

static cudaError_t fail(cudaError_t e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static cudaError_t fail(cudaError_t e, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    last_message = buf;
    last_error = e;
    return e;
}

/* ======================= emulator ======================= */

enum fiber_state { FIBER_RUNNABLE, FIBER_BLOCK_BARRIER, FIBER_WARP_BARRIER, FIBER_DONE };

/* Context switch. On x86-64 a 12-instruction stack switch (callee-saved registers + rsp; no
 * system call, unlike swapcontext's signal-mask save: the emulator switches millions of times);
 * elsewhere ucontext. */
#if defined(__x86_64__)
#define FAST_SWITCH 1
extern "C" void cc_fake_fiber_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl cc_fake_fiber_switch\n"
        ".type cc_fake_fiber_switch,@function\n"
        "cc_fake_fiber_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size cc_fake_fiber_switch, .-cc_fake_fiber_switch\n");
struct exec_context {
    void *sp;
};
#else
struct exec_context {
    ucontext_t uc;
};
#endif

struct fiber {
    exec_context context;
    void *stack;
    fiber_state state;
    void *asan_fake_stack;
};

struct cc_fake_block {
    int n_threads;
    fiber *fibers;
    cc_simt_ctx *ctxs;
    exec_context scheduler;
    int current;
    const std::function<void(cc_simt_ctx &)> *body;
    unsigned char *smem;
    /* barriers */
    int block_arrived;
    int warp_arrived[MAX_WARPS];
    unsigned warp_generation[MAX_WARPS];
    /* warp exchange buffers, double-buffered by generation parity */
    uint64_t exchange[MAX_WARPS][2][32];
    uint32_t mma_a[MAX_WARPS][2][32][4];
    uint32_t mma_b[MAX_WARPS][2][32][2];
    std::string error;
    const void *scheduler_stack_bottom;
    size_t scheduler_stack_size;
    void *scheduler_fake_stack;
};

static thread_local cc_fake_block *running_block;

static void context_switch(exec_context *save, exec_context *load) {
#ifdef FAST_SWITCH
    cc_fake_fiber_switch(&save->sp, load->sp);
#else
    swapcontext(&save->uc, &load->uc);
#endif
}

static void switch_to_scheduler(cc_fake_block *blk, fiber *f, bool dying) {
#ifdef FAKE_ASAN
    __sanitizer_start_switch_fiber(dying ? NULL : &f->asan_fake_stack, blk->scheduler_stack_bottom,
                                   blk->scheduler_stack_size);
#else
    (void)dying;
#endif
    context_switch(&f->context, &blk->scheduler);
#ifdef FAKE_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake_stack, NULL, NULL);
#endif
}

static void fiber_entry(void) {
    cc_fake_block *blk = running_block;
    int me = blk->current;
#ifdef FAKE_ASAN
    __sanitizer_finish_switch_fiber(NULL, &blk->scheduler_stack_bottom, &blk->scheduler_stack_size);
#endif
    (*blk->body)(blk->ctxs[me]);
    blk->fibers[me].state = FIBER_DONE;
    switch_to_scheduler(blk, &blk->fibers[me], true);
}

/* Called by a fiber: park at the given barrier kind and let the scheduler run others. */
static void park(cc_fake_block *blk, int t, fiber_state state) {
    blk->fibers[t].state = state;
    switch_to_scheduler(blk, &blk->fibers[t], false);
}

/* Releases barriers whose participants have all arrived; returns 0 when a barrier can never be
 * released (some participant finished), with blk->error set. */
static int release_barriers(cc_fake_block *blk) {
    int waiting_block = 0, done = 0;
    for (int t = 0; t < blk->n_threads; t++) {
        if (blk->fibers[t].state == FIBER_BLOCK_BARRIER) waiting_block++;
        if (blk->fibers[t].state == FIBER_DONE) done++;
    }
    if (waiting_block > 0 && waiting_block + done == blk->n_threads) {
        if (done > 0) {
            blk->error = "a thread finished while others wait at ctx.sync() (barrier after an early return)";
            return 0;
        }
        for (int t = 0; t < blk->n_threads; t++) blk->fibers[t].state = FIBER_RUNNABLE;
        blk->block_arrived = 0;
    }
    int n_warps = blk->n_threads / 32;
    for (int w = 0; w < n_warps; w++) {
        int waiting = 0, finished = 0;
        for (int l = 0; l < 32; l++) {
            fiber_state s = blk->fibers[w * 32 + l].state;
            if (s == FIBER_WARP_BARRIER) waiting++;
            if (s == FIBER_DONE) finished++;
        }
        if (waiting == 32) {
            for (int l = 0; l < 32; l++) blk->fibers[w * 32 + l].state = FIBER_RUNNABLE;
            blk->warp_generation[w]++;
        } else if (waiting > 0 && waiting + finished == 32) {
            blk->error = "divergent warp collective: some lanes finished while others wait at a shuffle/mma";
            return 0;
        }
    }
    return 1;
}

/* Fiber stacks, reused by every launch; freed at exit. */
static struct stack_pool_type {
    std::vector<void *> stacks;
    ~stack_pool_type() {
        for (void *p : stacks) free(p);
    }
} stack_pool;

static void run_block(cc_fake_block *blk) {
    for (int t = 0; t < blk->n_threads; t++) {
        fiber *f = &blk->fibers[t];
#ifdef FAST_SWITCH
        /* a fresh stack that "returns" into fiber_entry with the alignment of a call */
        uintptr_t top = ((uintptr_t)f->stack + FIBER_STACK_BYTES) & ~(uintptr_t)15;
        void **sp = (void **)top;
        *--sp = NULL;                        /* fiber_entry's return address (never used) */
        *--sp = (void *)(uintptr_t)fiber_entry;
        for (int r = 0; r < 6; r++) *--sp = NULL; /* rbp rbx r12-r15 */
        f->context.sp = sp;
#else
        getcontext(&f->context.uc);
        f->context.uc.uc_stack.ss_sp = f->stack;
        f->context.uc.uc_stack.ss_size = FIBER_STACK_BYTES;
        f->context.uc.uc_link = NULL;
        makecontext(&f->context.uc, fiber_entry, 0);
#endif
        f->state = FIBER_RUNNABLE;
    }
    blk->block_arrived = 0;
    for (int w = 0; w < MAX_WARPS; w++) {
        blk->warp_arrived[w] = 0;
        blk->warp_generation[w] = 0;
    }
    for (;;) {
        int ran = 0, all_done = 1;
        for (int t = 0; t < blk->n_threads; t++) {
            if (blk->fibers[t].state != FIBER_DONE) all_done = 0;
            if (blk->fibers[t].state != FIBER_RUNNABLE) continue;
            blk->current = t;
            running_block = blk;
#ifdef FAKE_ASAN
            __sanitizer_start_switch_fiber(&blk->scheduler_fake_stack, blk->fibers[t].stack, FIBER_STACK_BYTES);
#endif
            context_switch(&blk->scheduler, &blk->fibers[t].context);
#ifdef FAKE_ASAN
            __sanitizer_finish_switch_fiber(blk->scheduler_fake_stack, NULL, NULL);
#endif
            ran = 1;
        }
        if (all_done) return;
        if (!release_barriers(blk)) return;
        if (!ran) {
            int any_runnable = 0;
            for (int t = 0; t < blk->n_threads; t++) any_runnable |= blk->fibers[t].state == FIBER_RUNNABLE;
            if (!any_runnable) {
                int all_finished = 1;
                for (int t = 0; t < blk->n_threads; t++) all_finished &= blk->fibers[t].state == FIBER_DONE;
                if (all_finished) return;
                blk->error = "deadlock: threads wait at different barriers (a warp collective and ctx.sync mixed)";
                return;
            }
        }
    }
}

static cudaError_t run_grid(unsigned gx, unsigned gy, unsigned gz, unsigned block, size_t smem,
                            const std::function<void(cc_simt_ctx &)> &body) {
    counters.kernels++;
    if (block == 0 || block > MAX_BLOCK_THREADS || block % 32 != 0)
        return fail(cudaErrorInvalidValue, "launch: %u threads per block (the emulator needs a multiple of 32, <= 1024)",
                    block);
    if (gx == 0 || gy == 0 || gz == 0 || gy > 65535 || gz > 65535)
        return fail(cudaErrorInvalidValue, "launch: invalid grid %u x %u x %u", gx, gy, gz);
    if (smem > MAX_SMEM_BYTES) return fail(cudaErrorInvalidValue, "launch: %zu bytes of shared memory", smem);
    cc_fake_block *blk = new cc_fake_block();
    blk->n_threads = (int)block;
    blk->body = &body;
    blk->fibers = new fiber[block];
    blk->ctxs = new cc_simt_ctx[block];
    blk->smem = (unsigned char *)malloc(smem ? smem : 16);
    while (stack_pool.stacks.size() < block) stack_pool.stacks.push_back(malloc(FIBER_STACK_BYTES));
    for (unsigned t = 0; t < block; t++) blk->fibers[t].stack = stack_pool.stacks[t];
    cudaError_t result = cudaSuccess;
    for (unsigned z = 0; z < gz && result == cudaSuccess; z++)
        for (unsigned y = 0; y < gy && result == cudaSuccess; y++)
            for (unsigned x = 0; x < gx && result == cudaSuccess; x++) {
                memset(blk->smem, 0xff, smem ? smem : 16); /* shared memory starts as garbage (NaN) */
                for (unsigned t = 0; t < block; t++) {
                    cc_simt_ctx &c = blk->ctxs[t];
                    c.block = blk;
                    c.t = (int)t;
                    c.bx_ = (int)x;
                    c.by_ = (int)y;
                    c.bz_ = (int)z;
                    c.nbx_ = (int)gx;
                    c.nby_ = (int)gy;
                    c.nthreads_ = (int)block;
                }
                run_block(blk);
                if (!blk->error.empty())
                    result = fail(cudaErrorLaunchFailure, "kernel block (%u,%u,%u): %s", x, y, z, blk->error.c_str());
            }
    free(blk->smem);
    delete[] blk->fibers;
    delete[] blk->ctxs;
    delete blk;
    return result;
}

void cc_simt_ctx::sync() const { park(block, t, FIBER_BLOCK_BARRIER); }

unsigned char *cc_simt_ctx::smem() const { return block->smem; }

/* Warp exchange: every lane posts a value, waits for the warp, reads lane `src`'s value. */
static uint64_t warp_exchange(const cc_simt_ctx &c, uint64_t value, int src) {
    cc_fake_block *blk = c.block;
    int w = c.warp();
    unsigned parity = blk->warp_generation[w] & 1;
    blk->exchange[w][parity][c.lane()] = value;
    park(blk, c.t, FIBER_WARP_BARRIER);
    return blk->exchange[w][parity][src & 31];
}

float cc_simt_ctx::shfl_xor(float v, int mask) const {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint32_t got = (uint32_t)warp_exchange(*this, bits, lane() ^ mask);
    float out;
    memcpy(&out, &got, 4);
    return out;
}

double cc_simt_ctx::shfl_xor(double v, int mask) const {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    uint64_t got = warp_exchange(*this, bits, lane() ^ mask);
    double out;
    memcpy(&out, &got, 8);
    return out;
}

int cc_simt_ctx::shfl_xor(int v, int mask) const {
    return (int)(uint32_t)warp_exchange(*this, (uint32_t)v, lane() ^ mask);
}

static float bf16_lo(uint32_t r) {
    uint32_t u = r << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static float bf16_hi(uint32_t r) {
    uint32_t u = r & 0xffff0000u;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* mma.m16n8k16 (bf16, f32 accumulate) with the PTX fragment layouts:
 *   A 16x16: a[0]=(g, 2t..2t+1) a[1]=(g+8, 2t..) a[2]=(g, 2t+8..) a[3]=(g+8, 2t+8..)
 *   B 16x8:  b0=(k 2t..2t+1, n g) b1=(k 2t+8..2t+9, n g)
 *   C 16x8:  c[0..1]=(g, 2t..2t+1) c[2..3]=(g+8, 2t..2t+1)      g = lane/4, t = lane%4 */
void cc_simt_ctx::mma_bf16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) const {
    cc_fake_block *blk = block;
    int w = warp(), l = lane();
    unsigned parity = blk->warp_generation[w] & 1;
    for (int i = 0; i < 4; i++) blk->mma_a[w][parity][l][i] = a[i];
    blk->mma_b[w][parity][l][0] = b0;
    blk->mma_b[w][parity][l][1] = b1;
    park(blk, t, FIBER_WARP_BARRIER);
    /* element (r, k) of A lives in lane (r%8)*4 + (k%8)/2, register (r>=8) + 2*(k>=8), half k&1;
     * element (k, n) of B in lane n*4 + (k%8)/2, register k>=8, half k&1 */
    int g = l >> 2, tt = l & 3;
    for (int e = 0; e < 4; e++) {
        int row = g + (e >= 2 ? 8 : 0), col = 2 * tt + (e & 1);
        float acc = d[e];
        for (int k = 0; k < 16; k++) {
            uint32_t ra = blk->mma_a[w][parity][(row % 8) * 4 + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)];
            uint32_t rb = blk->mma_b[w][parity][col * 4 + (k % 8) / 2][k >= 8];
            float a_rk = (k & 1) ? bf16_hi(ra) : bf16_lo(ra), b_kc = (k & 1) ? bf16_hi(rb) : bf16_lo(rb);
            acc += a_rk * b_kc;
        }
        d[e] = acc;
    }
}

/* ======================= runtime ======================= */

struct cc_fake_stream {
    bool capturing;
    bool capture_invalid;
    std::vector<std::function<cudaError_t()>> *ops;
};
struct cc_fake_event {
    int recorded;
};
struct cc_fake_graph {
    std::vector<std::function<cudaError_t()>> ops;
};

static std::map<uintptr_t, size_t> allocations; /* device allocations: start -> size */
static size_t allocated_bytes;
static size_t memory_limit = (size_t)8 << 30;

void cc_fake_set_memory_limit(size_t bytes) { memory_limit = bytes; }

/* Is [p, p+n) inside one device allocation? */
static bool in_device_memory(const void *p, size_t n) {
    uintptr_t at = (uintptr_t)p;
    auto it = allocations.upper_bound(at);
    if (it == allocations.begin()) return false;
    --it;
    return at >= it->first && at + n <= it->first + it->second;
}

/* Runs work now, or appends it to the capture of the stream. */
static cudaError_t enqueue(cudaStream_t s, std::function<cudaError_t()> op) {
    if (s && s->capturing) {
        s->ops->push_back(op);
        return cudaSuccess;
    }
    return op();
}

/* A call that is illegal while a stream is being captured invalidates the capture. */
static cudaError_t capture_check(cudaStream_t s, const char *what) {
    if (s && s->capturing) {
        s->capture_invalid = true;
        return fail(cudaErrorStreamCaptureUnsupported, "%s during stream capture", what);
    }
    return cudaSuccess;
}

static std::vector<cudaStream_t> streams;

static cudaError_t any_capture(const char *what) {
    for (cudaStream_t s : streams) {
        cudaError_t e = capture_check(s, what);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient for CUDA runtime version";
    case cudaErrorLaunchFailure: return last_message.empty() ? "unspecified launch failure" : last_message.c_str();
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorIllegalAddress: return last_message.c_str();
    default: return "fake CUDA error";
    }
}

const char *cudaGetErrorName(cudaError_t e) {
    static char buf[32];
    snprintf(buf, sizeof buf, "cudaError%d", (int)e);
    return buf;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return last_error; }

cudaError_t cudaGetDeviceCount(int *count) {
    const char *env = getenv("CC_FAKE_NO_DEVICE");
    if (env && *env == '1') {
        *count = 0;
        return cudaErrorNoDevice;
    }
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    (void)device;
    switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 4; break; /* small: grids stay small in emulation */
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = MAX_SMEM_BYTES; break;
    case cudaDevAttrL2CacheSize: *value = 50 << 20; break;
    default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "clipc fake GPU (host emulator)");
    prop->totalGlobalMem = memory_limit;
    prop->major = 9;
    prop->multiProcessorCount = 4;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version) {
    *version = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *version) {
    *version = 13000;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    *total_bytes = memory_limit;
    *free_bytes = memory_limit > allocated_bytes ? memory_limit - allocated_bytes : 0;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **ptr, size_t size) {
    cudaError_t e = any_capture("cudaMalloc");
    if (e != cudaSuccess) return e;
    *ptr = NULL;
    if (size > memory_limit - allocated_bytes || allocated_bytes > memory_limit)
        return fail(cudaErrorMemoryAllocation, "out of memory");
    void *p = NULL;
    if (posix_memalign(&p, 256, size ? size : 1) != 0) return fail(cudaErrorMemoryAllocation, "out of memory");
    memset(p, 0xff, size); /* poison: every float reads as NaN until written */
    allocations[(uintptr_t)p] = size;
    allocated_bytes += size;
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    cudaError_t e = any_capture("cudaFree");
    if (e != cudaSuccess) return e;
    if (!ptr) return cudaSuccess;
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end()) return fail(cudaErrorInvalidValue, "cudaFree of a pointer that is not an allocation");
    allocated_bytes -= it->second;
    allocations.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t size) {
    *ptr = malloc(size ? size : 1);
    return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFreeHost(void *ptr) {
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (count == 0) return cudaSuccess;
    if ((dst_dev && !in_device_memory(dst, count)) || (src_dev && !in_device_memory(src, count)))
        return fail(cudaErrorInvalidValue, "cudaMemcpyAsync of %zu bytes outside a device allocation", count);
    if (stream && stream->capturing && kind != cudaMemcpyDeviceToDevice) {
        /* host memory in a captured graph must stay valid; clipc never does this */
        stream->capture_invalid = true;
        return fail(cudaErrorStreamCaptureUnsupported, "host<->device copy captured into a graph");
    }
    return enqueue(stream, [=]() {
        memmove(dst, src, count);
        return cudaSuccess;
    });
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t count, cudaStream_t stream) {
    if (count == 0) return cudaSuccess;
    if (!in_device_memory(dst, count))
        return fail(cudaErrorInvalidValue, "cudaMemsetAsync of %zu bytes outside a device allocation", count);
    return enqueue(stream, [=]() {
        memset(dst, value, count);
        return cudaSuccess;
    });
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags) {
    (void)flags;
    cudaStream_t s = new cc_fake_stream();
    s->capturing = false;
    s->capture_invalid = false;
    s->ops = NULL;
    streams.push_back(s);
    *stream = s;
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    for (size_t i = 0; i < streams.size(); i++)
        if (streams[i] == stream) streams.erase(streams.begin() + (long)i);
    delete stream->ops;
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return capture_check(stream, "cudaStreamQuery"); }
cudaError_t cudaStreamSynchronize(cudaStream_t stream) { return capture_check(stream, "cudaStreamSynchronize"); }

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned flags) {
    (void)flags;
    *event = new cc_fake_event();
    (*event)->recorded = 0;
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete event;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    cudaError_t e = capture_check(stream, "cudaEventRecord (clipc records events only outside capture)");
    if (e != cudaSuccess) return e;
    event->recorded = 1;
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
    cudaError_t e = any_capture("cudaEventQuery");
    if (e != cudaSuccess) return e;
    return event->recorded ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    (void)mode;
    const char *fail_env = getenv("CC_FAKE_FAIL_CAPTURE"); /* tests of the eager fallback */
    if (fail_env && *fail_env == '1') return fail(cudaErrorStreamCaptureUnsupported, "capture refused (CC_FAKE_FAIL_CAPTURE)");
    if (stream->capturing) return fail(cudaErrorInvalidValue, "stream is already capturing");
    stream->capturing = true;
    stream->capture_invalid = false;
    stream->ops = new std::vector<std::function<cudaError_t()>>();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    if (!stream->capturing) return fail(cudaErrorInvalidValue, "cudaStreamEndCapture without a capture");
    stream->capturing = false;
    counters.captures++;
    std::vector<std::function<cudaError_t()>> *ops = stream->ops;
    stream->ops = NULL;
    if (stream->capture_invalid) {
        delete ops;
        *graph = NULL;
        return cudaErrorStreamCaptureInvalidated;
    }
    *graph = new cc_fake_graph();
    (*graph)->ops = *ops;
    delete ops;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags) {
    (void)flags;
    *exec = new cc_fake_graph();
    (*exec)->ops = graph->ops;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    counters.graph_launches++;
    if (stream->capturing) return fail(cudaErrorStreamCaptureUnsupported, "graph launch into a capturing stream");
    for (auto &op : exec->ops) {
        cudaError_t e = op();
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

cudaError_t cc_fake_launch(unsigned gx, unsigned gy, unsigned gz, unsigned block, size_t smem, cudaStream_t stream,
                           std::function<void(cc_simt_ctx &)> body) {
    if (smem > DEFAULT_SMEM_LIMIT && smem > MAX_SMEM_BYTES) return fail(cudaErrorInvalidValue, "too much shared memory");
    cudaError_t e = enqueue(stream, [=]() { return run_grid(gx, gy, gz, block, smem, body); });
    if (e != cudaSuccess) last_error = e;
    return e;
}
