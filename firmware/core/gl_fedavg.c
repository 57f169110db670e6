#include "gl_fedavg.h"

#include "gl_errors.h"
#include "gl_wire.h"

int gl_fedavg_reset(gl_fedavg_t *a, uint32_t size, uint32_t owner, const float *own,
                    double weight) {
    uint32_t i;
    if (size > GL_MAX_PARAMS) return GL_E_ARGS;
    if (!(weight > 0.0)) return GL_E_WEIGHT;
    a->size = size;
    for (i = 0; i < size; i++) a->sum[i] = (double)own[i] * weight;
    a->weight = weight;
    a->senders[0] = owner;
    a->n_senders = 1;
    a->active = 1;
    return GL_OK;
}

int gl_fedavg_has(const gl_fedavg_t *a, uint32_t sender) {
    uint32_t i;
    for (i = 0; i < a->n_senders; i++)
        if (a->senders[i] == sender) return 1;
    return 0;
}

static int admit(gl_fedavg_t *a, uint32_t sender, double weight) {
    if (!a->active) return GL_E_STATE;
    if (gl_fedavg_has(a, sender)) return GL_E_DUPLICATE;
    if (!(weight > 0.0)) return GL_E_WEIGHT;
    if (a->n_senders >= GL_MAX_SENDERS) return GL_E_SENDERS;
    return GL_OK;
}

static void admitted(gl_fedavg_t *a, uint32_t sender, double weight) {
    a->weight += weight;
    a->senders[a->n_senders++] = sender;
}

int gl_fedavg_add(gl_fedavg_t *a, uint32_t sender, const float *model, double weight) {
    uint32_t i;
    int st = admit(a, sender, weight);
    if (st != GL_OK) return st;
    for (i = 0; i < a->size; i++)
        if (!gl_is_finite(model[i])) return GL_E_NONFINITE;
    for (i = 0; i < a->size; i++) a->sum[i] += (double)model[i] * weight;
    admitted(a, sender, weight);
    return GL_OK;
}

int gl_fedavg_add_payload(gl_fedavg_t *a, uint32_t sender, const uint8_t *payload, uint8_t dtype,
                          float scale, double weight) {
    uint32_t i;
    int st = admit(a, sender, weight);
    if (st != GL_OK) return st;
    if (gl_model_bytes(dtype, 1) == 0) return GL_E_CODE;
    for (i = 0; i < a->size; i++) {
        float v;
        st = gl_model_get(payload, i, dtype, scale, &v);
        if (st != GL_OK) return st;
    }
    for (i = 0; i < a->size; i++) {
        float v;
        (void)gl_model_get(payload, i, dtype, scale, &v);
        a->sum[i] += (double)v * weight;
    }
    admitted(a, sender, weight);
    return GL_OK;
}

uint32_t gl_fedavg_merged(const gl_fedavg_t *a) { return a->n_senders ? a->n_senders - 1 : 0; }

int gl_fedavg_finalise(gl_fedavg_t *a, float *out) {
    uint32_t i;
    if (!a->active) return GL_E_STATE;
    a->active = 0;
    for (i = 0; i < a->size; i++) out[i] = (float)(a->sum[i] / a->weight);
    return GL_OK;
}

void gl_fedavg_discard(gl_fedavg_t *a) { a->active = 0; }
