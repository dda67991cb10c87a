/* comm.h — the processes of a data-parallel run (`mpirun -np N clipc train`): rank, size and the few
 * collectives training needs, over MPI. Without a launcher in the environment, or in a build without
 * MPI (CLIPC_NO_MPI), there is one process of rank 0 and every collective is a copy or a no-op.
 *
 * Every collective must be called by all ranks in the same order. Errors abort the job (an MPI
 * failure leaves the other ranks waiting), after printing which rank failed and why. */
#ifndef CLIPC_COMM_H
#define CLIPC_COMM_H

#include <stddef.h>
#include <stdint.h>

/* MPI_Init when a launcher set OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK (and the build has MPI);
 * otherwise a single process. Returns 0, or -1 with an error (MPI wanted but not compiled in). */
int cc_comm_init(int *argc, char ***argv);
void cc_comm_finalize(void);
int cc_comm_rank(void);
int cc_comm_size(void);
int cc_comm_is_distributed(void); /* size > 1 */

/* In place: buf[i] ← Σ over ranks of buf[i]. */
void cc_comm_allreduce_sum(float *buf, int64_t n);
/* Each rank gives counts[rank] floats at all + displacement (the sum of the counts of lower ranks);
 * afterwards all holds every rank's floats in rank order. */
void cc_comm_allgather_floats(float *all, const int64_t *counts);
/* out[r] ← rank r's value; out has cc_comm_size() entries. */
void cc_comm_allgather_i64(int64_t value, int64_t *out);
void cc_comm_allgather_u64(uint64_t value, uint64_t *out);
/* bytes from root to every rank */
void cc_comm_broadcast(void *buf, size_t bytes, int root);
/* 1 on every rank when any rank passed a non-zero flag */
int cc_comm_any(int flag);
void cc_comm_barrier(void);
/* Prints "clipc: rank R: message" to stderr and ends every process of the job with status 1. */
_Noreturn void cc_comm_abort(const char *message);

#endif
