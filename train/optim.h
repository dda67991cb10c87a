/* optim.h — AdamW over a set of parameter tensors, with per-parameter weight-decay flags, a
 * warmup + cosine learning-rate schedule, and clipping by the global gradient norm.
 *
 * Gradients are read from each parameter's grad_acc tensor (where backward accumulates them);
 * cc_adamw_zero_grad clears them. Moments live on the parameters' backend. */
#ifndef CLIPC_OPTIM_H
#define CLIPC_OPTIM_H

#include <stdint.h>

#include "engine/backend.h"
#include "engine/tensor.h"

typedef struct cc_adamw_config {
    float lr, beta1, beta2, eps, weight_decay;
    float max_grad_norm;   /* <= 0: no clipping */
    int64_t warmup_steps, total_steps;
} cc_adamw_config;

void cc_adamw_config_default(cc_adamw_config *cfg); /* β (0.9, 0.98), ε 1e-6, wd 0.2, clip 1.0 */

typedef struct cc_adamw {
    cc_adamw_config config;
    cc_backend *backend;
    int n_params;
    cc_tensor **params;    /* trainable parameters (not owned) */
    int *decays;           /* weight decay applies to params[i] */
    cc_tensor **m, **v;    /* first and second moments (owned) */
    int64_t step;          /* optimizer steps taken */
} cc_adamw;

/* Allocates moments and grad_acc buffers (zeroed) for every parameter. */
int cc_adamw_init(cc_adamw *opt, const cc_adamw_config *cfg, cc_backend *backend, cc_tensor **params,
                  const int *decays, int n_params);
void cc_adamw_free(cc_adamw *opt);
int cc_adamw_zero_grad(cc_adamw *opt);
/* open_clip's schedule: linear warmup to lr, then cosine to 0 at total_steps. */
float cc_adamw_lr_at(const cc_adamw_config *cfg, int64_t step);
/* Global L2 norm of the accumulated gradients times grad_scale. */
int cc_adamw_grad_norm(cc_adamw *opt, float grad_scale, double *norm);
/* One step with gradients multiplied by grad_scale (e.g. 1/accumulation); clips to max_grad_norm.
 * Reports the pre-clip norm in *norm_out when not NULL. Does not zero the gradients. */
int cc_adamw_step(cc_adamw *opt, float grad_scale, double *norm_out);

#endif
