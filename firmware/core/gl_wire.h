/* The project's wire format (docs/wire-format.md): 46-byte header, payload, CRC-32. */
#ifndef GL_WIRE_H
#define GL_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "gl_config.h"

#define GL_HEADER_SIZE 46
#define GL_OVERHEAD 50

enum { GL_KIND_BEACON = 1, GL_KIND_HANDOVER, GL_KIND_PROPOSE, GL_KIND_ACCEPT, GL_KIND_REPLY,
       GL_KIND_MODEL, GL_KIND_STATUS };
enum { GL_DT_NONE = 0, GL_DT_F32 = 1, GL_DT_F16 = 2, GL_DT_I8 = 3, GL_DT_I8_BLOCK = 4 };
/* GL_DT_I8_BLOCK: per block of GL_I8_BLOCK values (the last may be shorter), an f32 scale and
 * then the values as int8, value = q * scale (scale = max|w| / 127 of the block, 1 if all 0). */
#define GL_I8_BLOCK 64u
#define GL_LAYER_MAX 4

typedef struct {
    uint8_t kind, layer, dtype, version;
    uint16_t flags;
    uint32_t sender, receiver, round;
    uint16_t step, chunk_index, chunk_count;
    int32_t cluster;
    uint32_t samples, model_version;
    float scale;
    uint32_t payload_len;
} gl_header_t;

/* Little-endian helpers (also used by the command layer). */
void gl_put_u16(uint8_t *p, uint16_t v);
void gl_put_u32(uint8_t *p, uint32_t v);
void gl_put_f32(uint8_t *p, float v);
uint16_t gl_get_u16(const uint8_t *p);
uint32_t gl_get_u32(const uint8_t *p);
float gl_get_f32(const uint8_t *p);

/* IEEE half <-> single, round to nearest even (as numpy's astype). */
uint16_t gl_f32_to_f16(float f);
float gl_f16_to_f32(uint16_t h);
int gl_is_finite(float f);

/* Bytes per element of a model dtype (0 for none, unknown, or the block encoding). */
unsigned gl_dtype_width(uint8_t dtype);
/* Payload bytes of an n-value model in dtype (0 for none or unknown). */
size_t gl_model_bytes(uint8_t dtype, size_t n);
int gl_kind_has_model(uint8_t kind);

/* Encode model[first .. first+count) of a model whose int8 scale is `scale` into out (count *
 * width bytes). gl_model_scale computes that scale over the whole model: max|w| / 127 rounded
 * to float32, or 1 when that is not a normal float (an all-zero or tiny model), so that every
 * scale on the wire is one a peer accepts. The model must be finite (gl_model_check). */
float gl_model_scale(const float *model, size_t n);
/* GL_OK if all n values are finite, else GL_E_NONFINITE. */
int gl_model_check(const float *model, size_t n);
/* GL_OK if every value encodes as a finite number in dtype, else GL_E_RANGE (fp16: |v| must
 * stay below 65520, which rounds to Inf): the chip never sends a frame a peer refuses. */
int gl_model_fits(const float *model, size_t n, uint8_t dtype);
int gl_model_encode(const float *model, size_t first, size_t count, uint8_t dtype, float scale,
                    uint8_t *out);
/* Decode count elements of payload into out; GL_E_SCALE / GL_E_NONFINITE on bad values.
 * Per-element dtypes only (f32, f16, int8); gl_model_get reads any dtype. */
int gl_model_decode(const uint8_t *payload, size_t count, uint8_t dtype, float scale, float *out);
/* Element i of a whole-model payload in any model dtype (scale: the header's, for int8). */
int gl_model_get(const uint8_t *payload, size_t i, uint8_t dtype, float scale, float *v);
/* Bytes [b0, b1) of the payload that encodes model[0 .. n) in dtype (scales computed here). */
int gl_model_encode_range(const float *model, size_t n, uint8_t dtype, size_t b0, size_t b1,
                          uint8_t *out);

/* Write header + payload + CRC into out; return the frame length or 0 if cap is too small.
 * version, payload_len are taken from the arguments (h->payload_len ignored). */
size_t gl_frame_encode(const gl_header_t *h, const uint8_t *payload, size_t n, uint8_t *out,
                       size_t cap);
/* Check one frame (length, magic, version, CRC, codes, chunk numbering); fill h and point
 * *payload into buf. Returns GL_OK or the gl_status reason. */
int gl_frame_parse(const uint8_t *buf, size_t n, gl_header_t *h, const uint8_t **payload);

/* Beacon payload (21 + 4C bytes): x, y, role, head, reserved, neighbours, C, C floats. */
size_t gl_beacon_encode(float x, float y, uint8_t role, int32_t head, uint16_t neighbours,
                        const float *dist, uint16_t c, uint8_t *out, size_t cap);
int gl_beacon_check(const uint8_t *payload, size_t n);

/* Frames of one model at a link limit of max_payload payload bytes per frame (0: one frame). */
size_t gl_chunk_count(size_t payload_bytes, size_t max_payload);

/* Bounded reassembly of one model message at a time, into a caller-owned buffer. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    int active;
    uint32_t sender, round;
    uint8_t kind, layer, dtype;
    uint16_t step, count, piece, last_len, received, flags;
    uint32_t model_version, samples, total, receiver;
    int32_t cluster;
    float scale;
    uint8_t seen[(GL_MAX_CHUNKS + 7) / 8];
} gl_reasm_t;

void gl_reasm_init(gl_reasm_t *r, uint8_t *buf, size_t cap);
/* Feed a parsed model frame whose whole payload must be `total` bytes. Returns GL_OK with
 * *done = 1 when the message is complete (payload in r->buf), GL_OK with *done = 0 while chunks
 * are missing, or a reason. *evicted is set when a different partial message was dropped. */
int gl_reasm_feed(gl_reasm_t *r, const gl_header_t *h, const uint8_t *payload, size_t total,
                  int *done, int *evicted);
#endif
