#include "gl_head.h"

#include <math.h>
#include <string.h>

#include "gl_errors.h"

int gl_head_configure(gl_head_t *h, uint16_t in_dim, uint16_t classes, uint8_t optimizer,
                      double lr, double weight_decay) {
    if (in_dim < 1 || in_dim > GL_MAX_IN || classes < 1 || classes > GL_MAX_CLASSES ||
        optimizer > GL_OPT_ADAM)
        return GL_E_ARGS;
    if (!(lr > 0.0 && lr <= GL_MAX_LR) || !(weight_decay >= 0.0 && weight_decay <= GL_MAX_WD))
        return GL_E_RANGE;
    h->in_dim = in_dim;
    h->classes = classes;
    h->n_params = (uint32_t)classes * in_dim + classes;
    h->optimizer = optimizer;
    h->lr = lr;
    h->weight_decay = weight_decay;
    memset(h->params, 0, sizeof(h->params));
    gl_head_reset_optimizer(h);
    return GL_OK;
}

void gl_head_reset_optimizer(gl_head_t *h) {
    memset(h->m, 0, sizeof(h->m));
    memset(h->v, 0, sizeof(h->v));
    h->t = 0;
}

void gl_head_forward(const gl_head_t *h, const float *x, uint32_t stride, uint32_t n, float *out) {
    uint32_t r, c, i, d = h->in_dim, k = h->classes;
    const float *bias = h->params + (uint32_t)k * d;
    for (r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * stride;
        for (c = 0; c < k; c++) {
            const float *w = h->params + (size_t)c * d;
            float acc = 0.0f;
            for (i = 0; i < d; i++) acc += xr[i] * w[i];
            out[(size_t)r * k + c] = acc + bias[c];
        }
    }
}

/* The loss gradient of parameter p (weights then biases, row-major) from the batch's
 * delta = (softmax - onehot) / n, plus L2 weight decay: g = sum_r delta[r][c] * x[r][i]
 * (bias: sum_r delta[r][c]). Summed in row order, like the Python trainer's reference. */
static float param_grad(const gl_head_t *h, uint32_t p, const float *delta, const float *x,
                        uint32_t stride, uint32_t n) {
    uint32_t r, c, i, d = h->in_dim, k = h->classes;
    float g = 0.0f;
    if (p < k * d) {
        c = p / d;
        i = p - c * d;
        for (r = 0; r < n; r++) g += delta[(size_t)r * k + c] * x[(size_t)r * stride + i];
    } else {
        c = p - k * d;
        for (r = 0; r < n; r++) g += delta[(size_t)r * k + c];
    }
    if (h->weight_decay != 0.0) g += h->params[p] * (float)h->weight_decay;
    return g;
}

float gl_head_train_step(gl_head_t *h, const float *x, uint32_t stride, const uint8_t *y,
                         uint32_t n, float *scratch) {
    uint32_t r, c, k = h->classes, p;
    float inv = 1.0f / (float)n, loss = 0.0f;
    float *delta = scratch;
    /* forward + softmax cross-entropy (mean over the batch); delta = (softmax - onehot) / n */
    gl_head_forward(h, x, stride, n, delta);
    for (r = 0; r < n; r++) {
        float *l = delta + (size_t)r * k, mx = l[0], total = 0.0f, picked;
        for (c = 1; c < k; c++)
            if (l[c] > mx) mx = l[c];
        for (c = 0; c < k; c++) l[c] -= mx;
        picked = l[y[r]];
        for (c = 0; c < k; c++) {
            l[c] = expf(l[c]);
            total += l[c];
        }
        loss += (logf(total) - picked) * inv;
        for (c = 0; c < k; c++) l[c] /= total;
        l[y[r]] -= 1.0f;
        for (c = 0; c < k; c++) l[c] *= inv;
    }
    h->t++;
    /* gradient of each parameter (weights then biases), fused with its update: no gradient
     * buffer. g = sum_r delta[r][c] * x[r][i] (bias: sum_r delta[r][c]) */
    if (h->optimizer == GL_OPT_SGD) {
        const float neg_lr = (float)(-h->lr);
        for (p = 0; p < h->n_params; p++) {
            float g = param_grad(h, p, delta, x, stride, n);
            h->params[p] += g * neg_lr;
        }
    } else {
        const double bc1 = 1.0 - pow(0.9, (double)h->t);
        const float bc2_sqrt = (float)sqrt(1.0 - pow(0.999, (double)h->t));
        const float neg_step = (float)(-(h->lr / bc1));
        const float one_m_b1 = (float)(1.0 - 0.9), one_m_b2 = (float)(1.0 - 0.999);
        const float b2 = 0.999f, eps = 1e-8f;
        for (p = 0; p < h->n_params; p++) {
            float g = param_grad(h, p, delta, x, stride, n), a;
            h->m[p] += (g - h->m[p]) * one_m_b1;
            a = (g * one_m_b2) * g;
            h->v[p] = h->v[p] * b2 + a;
            a = sqrtf(h->v[p]) / bc2_sqrt + eps;
            h->params[p] += (h->m[p] * neg_step) / a;
        }
    }
    return loss;
}

static float q15_scale(const float *v, uint32_t n, uint32_t stride, uint32_t rows) {
    float peak = 0.0f;
    uint32_t r, i;
    for (r = 0; r < rows; r++)
        for (i = 0; i < n; i++) {
            float a = fabsf(v[(size_t)r * stride + i]);
            if (a > peak) peak = a;
        }
    return peak > 0.0f ? peak / 32767.0f : 1.0f;
}

static int16_t q15(float v, float inv_scale) {
    float q = v * inv_scale;
    if (q != q) return 0; /* NaN: no float-to-int conversion of it */
    q += q >= 0.0f ? 0.5f : -0.5f;
    if (q > 32767.0f) q = 32767.0f;
    if (q < -32767.0f) q = -32767.0f;
    return (int16_t)q;
}

void gl_head_forward_q15(const gl_head_t *h, const float *x, uint32_t stride, uint32_t n,
                         int16_t *wq, int16_t *xq, float *out) {
    uint32_t r, c, i, d = h->in_dim, k = h->classes;
    const float *bias = h->params + (uint32_t)k * d;
    float sw = q15_scale(h->params, k * d, k * d, 1), inv_sw = 1.0f / sw;
    for (i = 0; i < k * d; i++) wq[i] = q15(h->params[i], inv_sw);
    for (r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * stride;
        float sx = q15_scale(xr, d, d, 1), inv_sx = 1.0f / sx, s = sx * sw;
        for (i = 0; i < d; i++) xq[i] = q15(xr[i], inv_sx);
        for (c = 0; c < k; c++) {
            const int16_t *w = wq + (size_t)c * d;
            /* |x*w| < 2^30; >> 8 keeps 160 of them inside int32 (160 * 2^22 < 2^31) */
            int32_t acc = 0;
            for (i = 0; i < d; i++) acc += ((int32_t)xq[i] * w[i]) >> 8;
            out[(size_t)r * k + c] = (float)acc * 256.0f * s + bias[c];
        }
    }
}
