/* The linear classifier head (learner.py layout: weight (C, d) row-major, then bias (C)),
 * its training step (SGD or Adam, torch/NumpyTrainer order) and inference. */
#ifndef GL_HEAD_H
#define GL_HEAD_H
#include <stdint.h>

#include "gl_config.h"

enum { GL_OPT_SGD = 0, GL_OPT_ADAM = 1 };

typedef struct {
    uint16_t in_dim, classes;
    uint32_t n_params;
    uint8_t optimizer;
    double lr, weight_decay;
    uint32_t t; /* optimiser steps since the last reset */
    float params[GL_MAX_PARAMS];
    float m[GL_MAX_PARAMS], v[GL_MAX_PARAMS]; /* Adam moments (unused by SGD) */
} gl_head_t;

/* Set shape and optimiser; zero params and optimiser state. GL_E_ARGS if out of range. */
int gl_head_configure(gl_head_t *h, uint16_t in_dim, uint16_t classes, uint8_t optimizer,
                      double lr, double weight_decay);
/* A fresh optimiser (as a new torch optimiser each round). */
void gl_head_reset_optimizer(gl_head_t *h);
/* Logits of rows x (n x in_dim, stride `stride` floats) into out (n x classes). */
void gl_head_forward(const gl_head_t *h, const float *x, uint32_t stride, uint32_t n, float *out);
/* One optimiser step on the minibatch (x, y) of n rows; `scratch` holds n x classes floats.
 * Returns the mean cross-entropy loss of the batch. */
float gl_head_train_step(gl_head_t *h, const float *x, uint32_t stride, const uint8_t *y,
                         uint32_t n, float *scratch);
/* Fixed-point (Q15 inputs and weights, int32 accumulate) forward, for the soft-float vs
 * fixed-point comparison: wq is classes x in_dim int16 scratch, xq in_dim int16 scratch. */
void gl_head_forward_q15(const gl_head_t *h, const float *x, uint32_t stride, uint32_t n,
                         int16_t *wq, int16_t *xq, float *out);
#endif
