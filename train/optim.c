/* optim.c — AdamW with decoupled weight decay (PyTorch's torch.optim.AdamW update), run by the
 * parameters' backend so that the same code drives CPU and CUDA training. */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/util.h"

void cc_adamw_config_default(cc_adamw_config *cfg) {
    *cfg = (cc_adamw_config){.lr = 5e-4f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-6f, .weight_decay = 0.2f,
                             .max_grad_norm = 1.0f, .warmup_steps = 0, .total_steps = 1};
}

static cc_tensor *zeros_like(const cc_tensor *p, cc_backend *be, const char *what) {
    cc_tensor *t = cc_tensor_new(CC_F32, p->ndim, p->shape, what);
    if (!t) return NULL;
    if (cc_tensor_alloc(t, be->host_memory ? NULL : be) != 0 || be->zero(be, t->data, cc_nbytes(t)) != 0) {
        cc_tensor_free(t);
        return NULL;
    }
    return t;
}

int cc_adamw_init(cc_adamw *opt, const cc_adamw_config *cfg, cc_backend *backend, cc_tensor **params,
                  const int *decays, int n_params) {
    memset(opt, 0, sizeof *opt);
    opt->config = *cfg;
    opt->backend = backend;
    opt->n_params = n_params;
    opt->params = cc_calloc((size_t)n_params, sizeof *opt->params, "optimizer");
    opt->decays = cc_calloc((size_t)n_params, sizeof *opt->decays, "optimizer");
    opt->m = cc_calloc((size_t)n_params, sizeof *opt->m, "optimizer");
    opt->v = cc_calloc((size_t)n_params, sizeof *opt->v, "optimizer");
    if (!opt->params || !opt->decays || !opt->m || !opt->v) {
        cc_adamw_free(opt);
        return -1;
    }
    for (int i = 0; i < n_params; i++) {
        cc_tensor *p = params[i];
        opt->params[i] = p;
        opt->decays[i] = decays[i];
        opt->m[i] = zeros_like(p, backend, "adam m");
        opt->v[i] = zeros_like(p, backend, "adam v");
        if (!p->grad_acc) p->grad_acc = zeros_like(p, backend, "grad");
        if (!opt->m[i] || !opt->v[i] || !p->grad_acc) {
            cc_adamw_free(opt);
            return -1;
        }
    }
    return 0;
}

void cc_adamw_free(cc_adamw *opt) {
    for (int i = 0; i < opt->n_params; i++) {
        if (opt->m) cc_tensor_free(opt->m[i]);
        if (opt->v) cc_tensor_free(opt->v[i]);
        if (opt->params && opt->params[i]) {
            cc_tensor_free(opt->params[i]->grad_acc);
            opt->params[i]->grad_acc = NULL;
        }
    }
    free(opt->params);
    free(opt->decays);
    free(opt->m);
    free(opt->v);
    memset(opt, 0, sizeof *opt);
}

int cc_adamw_zero_grad(cc_adamw *opt) {
    for (int i = 0; i < opt->n_params; i++) {
        cc_tensor *acc = opt->params[i]->grad_acc;
        if (opt->backend->zero(opt->backend, acc->data, cc_nbytes(acc)) != 0) return -1;
    }
    return 0;
}

float cc_adamw_lr_at(const cc_adamw_config *cfg, int64_t step) {
    /* step arithmetic in double: no signed overflow for any step */
    if (step < cfg->warmup_steps) return cfg->lr * (float)((double)step + 1) / (float)cfg->warmup_steps;
    double decay_steps = (double)cfg->total_steps - (double)cfg->warmup_steps;
    if (decay_steps <= 0) return cfg->lr;
    double progress = ((double)step - (double)cfg->warmup_steps) / decay_steps;
    if (progress > 1) progress = 1;
    return (float)(0.5 * (1.0 + cos(M_PI * progress)) * cfg->lr);
}

int cc_adamw_grad_norm(cc_adamw *opt, float grad_scale, double *norm) {
    double total = 0;
    for (int i = 0; i < opt->n_params; i++) {
        cc_tensor *acc = opt->params[i]->grad_acc;
        double squares;
        if (opt->backend->sum_squares(opt->backend, acc->data, cc_nelements(acc), &squares) != 0) return -1;
        total += squares;
    }
    *norm = sqrt(total) * grad_scale;
    return 0;
}

int cc_adamw_step(cc_adamw *opt, float grad_scale, double *norm_out) {
    double norm;
    if (cc_adamw_grad_norm(opt, grad_scale, &norm) != 0) return -1;
    if (norm_out) *norm_out = norm;
    if (!isfinite(norm)) {
        cc_set_error("gradient norm is %g", norm);
        return -1;
    }
    float scale = grad_scale;
    /* torch.nn.utils.clip_grad_norm_: multiply by max_norm / (norm + 1e-6) when that is < 1 */
    if (opt->config.max_grad_norm > 0) {
        double factor = opt->config.max_grad_norm / (norm + 1e-6);
        if (factor < 1.0) scale = (float)(scale * factor);
    }
    if (opt->step == INT64_MAX) {
        cc_set_error("optimizer step count %lld cannot grow", (long long)opt->step);
        return -1;
    }
    opt->step++;
    float lr = cc_adamw_lr_at(&opt->config, opt->step - 1);
    for (int i = 0; i < opt->n_params; i++) {
        cc_tensor *p = opt->params[i];
        cc_adamw_args args = {
            .param = p->data, .grad = p->grad_acc->data, .m = opt->m[i]->data, .v = opt->v[i]->data,
            .n = cc_nelements(p), .lr = lr, .beta1 = opt->config.beta1, .beta2 = opt->config.beta2,
            .eps = opt->config.eps, .weight_decay = opt->decays[i] ? opt->config.weight_decay : 0.0f,
            .grad_scale = scale, .step = opt->step,
        };
        if (opt->backend->adamw(opt->backend, &args) != 0) return -1;
    }
    return 0;
}
