/* comm.c — engine/comm.h over MPI, or a single process when MPI is absent or not launched.
 *
 * MPI is initialised only when a launcher's variables are in the environment, so that a plain
 * `clipc train` stays one process that never touches MPI. Buffers larger than INT_MAX elements are
 * sent in pieces (MPI counts are int). */
#include "engine/comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

#ifndef CLIPC_NO_MPI
#include <mpi.h>
#endif

#define COMM_CHUNK (1 << 28) /* elements per MPI call: well inside int */

static int comm_rank = 0, comm_size = 1;

/* The variables that Open MPI's mpirun, PMI launchers (MPICH, srun --mpi=pmi2) and PMIx set. */
static int launched_by_mpi(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int cc_comm_rank(void) { return comm_rank; }
int cc_comm_size(void) { return comm_size; }
int cc_comm_is_distributed(void) { return comm_size > 1; }

#ifdef CLIPC_NO_MPI

int cc_comm_init(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (launched_by_mpi() && getenv("OMPI_COMM_WORLD_SIZE") && strcmp(getenv("OMPI_COMM_WORLD_SIZE"), "1") != 0) {
        cc_set_error("launched by mpirun, but this clipc was built without MPI (install libopenmpi-dev and rebuild)");
        return -1;
    }
    return 0;
}
void cc_comm_finalize(void) {}
void cc_comm_allreduce_sum(float *buf, int64_t n) { (void)buf, (void)n; }
void cc_comm_allgather_floats(float *all, const int64_t *counts) { (void)all, (void)counts; }
void cc_comm_allgather_i64(int64_t value, int64_t *out) { out[0] = value; }
void cc_comm_allgather_u64(uint64_t value, uint64_t *out) { out[0] = value; }
void cc_comm_broadcast(void *buf, size_t bytes, int root) { (void)buf, (void)bytes, (void)root; }
int cc_comm_any(int flag) { return flag != 0; }
void cc_comm_barrier(void) {}
_Noreturn void cc_comm_abort(const char *message) {
    fprintf(stderr, "clipc: rank 0: %s\n", message);
    exit(1);
}

#else

static int comm_mpi = 0; /* MPI_Init was called */

_Noreturn void cc_comm_abort(const char *message) {
    fprintf(stderr, "clipc: rank %d: %s\n", comm_rank, message);
    fflush(stderr);
    if (comm_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static void check(int code, const char *what) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING + 64];
    int len = 0;
    snprintf(text, sizeof text, "%s failed: ", what);
    size_t used = strlen(text);
    MPI_Error_string(code, text + used, &len);
    text[used + (size_t)len] = 0;
    cc_comm_abort(text);
}

int cc_comm_init(int *argc, char ***argv) {
    if (!launched_by_mpi()) return 0;
    int provided;
    /* the loader's threads and OpenMP never call MPI: only the main thread does */
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init");
    comm_mpi = 1;
    /* errors come back as codes, so that check() can name the rank before aborting */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &comm_rank), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &comm_size), "MPI_Comm_size");
    return 0;
}

void cc_comm_finalize(void) {
    if (comm_mpi) MPI_Finalize();
    comm_mpi = 0;
}

void cc_comm_allreduce_sum(float *buf, int64_t n) {
    if (comm_size == 1) return;
    for (int64_t at = 0; at < n; at += COMM_CHUNK) {
        int count = (int)(n - at < COMM_CHUNK ? n - at : COMM_CHUNK);
        check(MPI_Allreduce(MPI_IN_PLACE, buf + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    }
}

void cc_comm_allgather_floats(float *all, const int64_t *counts) {
    if (comm_size == 1) return;
    int *c = malloc((size_t)comm_size * sizeof(int)), *displ = malloc((size_t)comm_size * sizeof(int));
    if (!c || !displ) cc_comm_abort("out of memory in all-gather");
    int64_t at = 0;
    for (int r = 0; r < comm_size; r++) {
        if (counts[r] > INT_MAX || at > INT_MAX) cc_comm_abort("all-gather of more than 2^31 floats");
        c[r] = (int)counts[r];
        displ[r] = (int)at;
        at += counts[r];
    }
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, c, displ, MPI_FLOAT, MPI_COMM_WORLD),
          "MPI_Allgatherv");
    free(c);
    free(displ);
}

void cc_comm_allgather_i64(int64_t value, int64_t *out) {
    out[0] = value;
    if (comm_size > 1) check(MPI_Allgather(&value, 1, MPI_INT64_T, out, 1, MPI_INT64_T, MPI_COMM_WORLD), "MPI_Allgather");
}

void cc_comm_allgather_u64(uint64_t value, uint64_t *out) {
    out[0] = value;
    if (comm_size > 1) check(MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
}

void cc_comm_broadcast(void *buf, size_t bytes, int root) {
    if (comm_size == 1) return;
    for (size_t at = 0; at < bytes; at += COMM_CHUNK) {
        int count = (int)(bytes - at < COMM_CHUNK ? bytes - at : COMM_CHUNK);
        check(MPI_Bcast((char *)buf + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
}

int cc_comm_any(int flag) {
    if (comm_size == 1) return flag != 0;
    int mine = flag != 0, any = 0;
    check(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return any;
}

void cc_comm_barrier(void) {
    if (comm_size > 1) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

#endif
