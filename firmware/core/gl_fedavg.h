/* Cumulative FedAvg in one fixed accumulator (aggregation.py's CumulativeFedAvg): S = n_i w_i,
 * N = n_i at reset; each distinct sender adds n_j w_j and n_j; finalise writes S / N. S is
 * float64 (as in Python), so results are bit-identical to the Python aggregator. */
#ifndef GL_FEDAVG_H
#define GL_FEDAVG_H
#include <stddef.h>
#include <stdint.h>

#include "gl_config.h"

typedef struct {
    uint32_t size;
    int active;
    double weight;
    uint32_t n_senders;
    uint32_t senders[GL_MAX_SENDERS];
    double sum[GL_MAX_PARAMS];
} gl_fedavg_t;

int gl_fedavg_reset(gl_fedavg_t *a, uint32_t size, uint32_t owner, const float *own, double weight);
/* Is `sender` already merged this step? */
int gl_fedavg_has(const gl_fedavg_t *a, uint32_t sender);
/* Add a decoded model (size floats). GL_E_DUPLICATE for a repeat sender (nothing merged). */
int gl_fedavg_add(gl_fedavg_t *a, uint32_t sender, const float *model, double weight);
/* Add a wire payload (size elements of dtype) without a decode buffer: checked first (finite,
 * scale), merged only if all of it is good. */
int gl_fedavg_add_payload(gl_fedavg_t *a, uint32_t sender, const uint8_t *payload, uint8_t dtype,
                          float scale, double weight);
uint32_t gl_fedavg_merged(const gl_fedavg_t *a);
int gl_fedavg_finalise(gl_fedavg_t *a, float *out);
void gl_fedavg_discard(gl_fedavg_t *a);
#endif
