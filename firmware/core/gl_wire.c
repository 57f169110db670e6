#include "gl_wire.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "gl_config.h"
#include "gl_crc32.h"
#include "gl_errors.h"

void gl_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
void gl_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
void gl_put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    gl_put_u32(p, u);
}
uint16_t gl_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
uint32_t gl_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
float gl_get_f32(const uint8_t *p) {
    uint32_t u = gl_get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

int gl_is_finite(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return ((u >> 23) & 0xFFu) != 0xFFu;
}

uint16_t gl_f32_to_f16(float f) {
    uint32_t x, sign, exp, mant, half, rem, halfway, shift;
    int e;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    exp = (x >> 23) & 0xFFu;
    mant = x & 0x7FFFFFu;
    if (exp == 0xFFu) return (uint16_t)(sign | 0x7C00u | (mant ? (0x200u | (mant >> 13)) : 0u));
    e = (int)exp - 112;
    if (e >= 31) return (uint16_t)(sign | 0x7C00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        shift = (uint32_t)(14 - e);
        half = mant >> shift;
        rem = mant & ((1u << shift) - 1u);
        halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    half = ((uint32_t)e << 10) | (mant >> 13);
    rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) half++;
    return (uint16_t)(sign | half);
}

float gl_f16_to_f32(uint16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, x;
    float f;
    if (exp == 0x1Fu) {
        x = sign | 0x7F800000u | (mant << 13);
    } else if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else { /* subnormal: normalise */
            exp = 113;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                exp--;
            }
            x = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
        }
    } else {
        x = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    memcpy(&f, &x, 4);
    return f;
}

unsigned gl_dtype_width(uint8_t dtype) {
    switch (dtype) {
    case GL_DT_F32: return 4;
    case GL_DT_F16: return 2;
    case GL_DT_I8: return 1;
    default: return 0;
    }
}

size_t gl_model_bytes(uint8_t dtype, size_t n) {
    if (dtype == GL_DT_I8_BLOCK) return n + 4 * ((n + GL_I8_BLOCK - 1) / GL_I8_BLOCK);
    return n * gl_dtype_width(dtype);
}

int gl_kind_has_model(uint8_t kind) {
    return kind == GL_KIND_ACCEPT || kind == GL_KIND_REPLY || kind == GL_KIND_MODEL;
}

float gl_model_scale(const float *model, size_t n) {
    float peak = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        float a = fabsf(model[i]);
        if (a > peak) peak = a;
    }
    {
        float scale = (float)((double)peak / 127.0);
        /* not a normal float (0, subnormal: the RP2040 flushes those to 0), or NaN: 1 */
        return scale >= FLT_MIN && gl_is_finite(scale) ? scale : 1.0f;
    }
}

int gl_model_check(const float *model, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (!gl_is_finite(model[i])) return GL_E_NONFINITE;
    return GL_OK;
}

int gl_model_fits(const float *model, size_t n, uint8_t dtype) {
    size_t i;
    if (dtype != GL_DT_F16) return GL_OK;
    for (i = 0; i < n; i++) /* 65520 and beyond round to Inf in fp16 */
        if (!(fabsf(model[i]) < 65520.0f)) return GL_E_RANGE;
    return GL_OK;
}

int gl_model_encode(const float *model, size_t first, size_t count, uint8_t dtype, float scale,
                    uint8_t *out) {
    size_t i;
    for (i = 0; i < count; i++) {
        float v = model[first + i];
        if (dtype == GL_DT_F32) {
            gl_put_f32(out + 4 * i, v);
        } else if (dtype == GL_DT_F16) {
            gl_put_u16(out + 2 * i, gl_f32_to_f16(v));
        } else if (dtype == GL_DT_I8) {
            float q = rintf(v / scale);
            if (q != q) q = 0.0f; /* NaN (refused before encoding; never an int conversion) */
            if (q > 127.0f) q = 127.0f;
            if (q < -127.0f) q = -127.0f;
            out[i] = (uint8_t)(int8_t)q;
        } else {
            return GL_E_CODE;
        }
    }
    return GL_OK;
}

int gl_model_decode(const uint8_t *payload, size_t count, uint8_t dtype, float scale, float *out) {
    size_t i;
    if (dtype == GL_DT_I8 && (!gl_is_finite(scale) || !(scale > 0.0f))) return GL_E_SCALE;
    for (i = 0; i < count; i++) {
        float v;
        if (dtype == GL_DT_F32) v = gl_get_f32(payload + 4 * i);
        else if (dtype == GL_DT_F16) v = gl_f16_to_f32(gl_get_u16(payload + 2 * i));
        else if (dtype == GL_DT_I8) v = (float)(int8_t)payload[i] * scale;
        else return GL_E_CODE;
        if (!gl_is_finite(v)) return GL_E_NONFINITE;
        out[i] = v;
    }
    return GL_OK;
}

int gl_model_get(const uint8_t *payload, size_t i, uint8_t dtype, float scale, float *v) {
    unsigned width = gl_dtype_width(dtype);
    if (dtype == GL_DT_I8_BLOCK) {
        size_t at = (i / GL_I8_BLOCK) * (4 + GL_I8_BLOCK);
        float s = gl_get_f32(payload + at);
        if (!gl_is_finite(s) || !(s > 0.0f)) return GL_E_SCALE;
        *v = (float)(int8_t)payload[at + 4 + i % GL_I8_BLOCK] * s;
        return gl_is_finite(*v) ? GL_OK : GL_E_NONFINITE;
    }
    if (width == 0) return GL_E_CODE;
    return gl_model_decode(payload + i * width, 1, dtype, scale, v);
}

/* One block of GL_DT_I8_BLOCK (scale, then count int8) into out (4 + count bytes). */
static void encode_block(const float *v, size_t count, uint8_t *out) {
    float scale = gl_model_scale(v, count);
    gl_put_f32(out, scale);
    (void)gl_model_encode(v, 0, count, GL_DT_I8, scale, out + 4);
}

int gl_model_encode_range(const float *model, size_t n, uint8_t dtype, size_t b0, size_t b1,
                          uint8_t *out) {
    uint8_t tmp[4 + GL_I8_BLOCK];
    size_t unit, e, j;
    float scale = 1.0f;
    if (gl_model_bytes(dtype, 1) == 0) return GL_E_CODE;
    if (b1 > gl_model_bytes(dtype, n) || b0 > b1) return GL_E_ARGS;
    if (dtype == GL_DT_I8) scale = gl_model_scale(model, n);
    unit = dtype == GL_DT_I8_BLOCK ? 4 + GL_I8_BLOCK : gl_dtype_width(dtype);
    for (e = b0 / unit; e * unit < b1; e++) {  /* every element or block that overlaps */
        size_t len;
        if (dtype == GL_DT_I8_BLOCK) {
            size_t first = e * GL_I8_BLOCK;
            size_t count = n - first < GL_I8_BLOCK ? n - first : GL_I8_BLOCK;
            encode_block(model + first, count, tmp);
            len = 4 + count;
        } else {
            (void)gl_model_encode(model, e, 1, dtype, scale, tmp);
            len = unit;
        }
        for (j = 0; j < len; j++) {
            size_t at = e * unit + j;
            if (at >= b0 && at < b1) out[at - b0] = tmp[j];
        }
    }
    return GL_OK;
}

size_t gl_frame_encode(const gl_header_t *h, const uint8_t *payload, size_t n, uint8_t *out,
                       size_t cap) {
    if (cap < GL_OVERHEAD || n > cap - GL_OVERHEAD) return 0;
    out[0] = 'G';
    out[1] = 'L';
    out[2] = GL_WIRE_VERSION;
    out[3] = h->kind;
    out[4] = h->layer;
    out[5] = h->dtype;
    gl_put_u16(out + 6, h->flags);
    gl_put_u32(out + 8, h->sender);
    gl_put_u32(out + 12, h->receiver);
    gl_put_u32(out + 16, h->round);
    gl_put_u16(out + 20, h->step);
    gl_put_u16(out + 22, h->chunk_index);
    gl_put_u16(out + 24, h->chunk_count);
    gl_put_u32(out + 26, (uint32_t)h->cluster);
    gl_put_u32(out + 30, h->samples);
    gl_put_u32(out + 34, h->model_version);
    gl_put_f32(out + 38, h->scale);
    gl_put_u32(out + 42, (uint32_t)n);
    if (n && payload != out + GL_HEADER_SIZE) memmove(out + GL_HEADER_SIZE, payload, n);
    gl_put_u32(out + GL_HEADER_SIZE + n, gl_crc32(0, out, GL_HEADER_SIZE + n));
    return GL_OVERHEAD + n;
}

int gl_frame_parse(const uint8_t *buf, size_t n, gl_header_t *h, const uint8_t **payload) {
    uint32_t plen;
    if (n < GL_OVERHEAD) return GL_E_SHORT;
    if (buf[0] != 'G' || buf[1] != 'L') return GL_E_MAGIC;
    if (buf[2] != GL_WIRE_VERSION) return GL_E_VERSION;
    plen = gl_get_u32(buf + 42);
    if (plen != n - GL_OVERHEAD) return GL_E_LENGTH;
    if (gl_crc32(0, buf, GL_HEADER_SIZE + plen) != gl_get_u32(buf + GL_HEADER_SIZE + plen))
        return GL_E_CRC;
    h->version = buf[2];
    h->kind = buf[3];
    h->layer = buf[4];
    h->dtype = buf[5];
    if (h->kind < GL_KIND_BEACON || h->kind > GL_KIND_STATUS || h->layer > GL_LAYER_MAX ||
        h->dtype > GL_DT_I8_BLOCK)
        return GL_E_CODE;
    h->flags = gl_get_u16(buf + 6);
    h->sender = gl_get_u32(buf + 8);
    h->receiver = gl_get_u32(buf + 12);
    h->round = gl_get_u32(buf + 16);
    h->step = gl_get_u16(buf + 20);
    h->chunk_index = gl_get_u16(buf + 22);
    h->chunk_count = gl_get_u16(buf + 24);
    h->cluster = (int32_t)gl_get_u32(buf + 26);
    h->samples = gl_get_u32(buf + 30);
    h->model_version = gl_get_u32(buf + 34);
    h->scale = gl_get_f32(buf + 38);
    h->payload_len = plen;
    if (h->flags != 0) return GL_E_FLAGS; /* reserved: wire.py refuses them too */
    if (h->chunk_count < 1 || h->chunk_index >= h->chunk_count) return GL_E_CHUNK;
    *payload = buf + GL_HEADER_SIZE;
    return GL_OK;
}

size_t gl_beacon_encode(float x, float y, uint8_t role, int32_t head, uint16_t neighbours,
                        const float *dist, uint16_t c, uint8_t *out, size_t cap) {
    size_t need = 22u + 4u * c, i;
    if (cap < need) return 0;
    gl_put_f32(out, x);
    gl_put_f32(out + 4, y);
    out[8] = role;
    gl_put_u32(out + 9, (uint32_t)head);
    gl_put_u32(out + 13, 0);
    gl_put_u16(out + 17, neighbours);
    gl_put_u16(out + 19, c);
    /* Python's struct "<ffBiiHH": 21 bytes before the distribution */
    for (i = 0; i < c; i++) gl_put_f32(out + 21 + 4 * i, dist[i]);
    return 21u + 4u * c;
}

int gl_beacon_check(const uint8_t *payload, size_t n) {
    uint16_t c;
    size_t i;
    if (n < 21) return GL_E_NOT_MODEL;
    c = gl_get_u16(payload + 19);
    if (n != 21u + 4u * c) return GL_E_NOT_MODEL;
    if (!gl_is_finite(gl_get_f32(payload)) || !gl_is_finite(gl_get_f32(payload + 4)))
        return GL_E_NONFINITE;
    for (i = 0; i < c; i++)
        if (!gl_is_finite(gl_get_f32(payload + 21 + 4 * i))) return GL_E_NONFINITE;
    if (payload[8] > 2) return GL_E_CODE;
    return GL_OK;
}

size_t gl_chunk_count(size_t payload_bytes, size_t max_payload) {
    if (max_payload == 0 || payload_bytes <= max_payload) return 1;
    return (payload_bytes + max_payload - 1) / max_payload;
}

void gl_reasm_init(gl_reasm_t *r, uint8_t *buf, size_t cap) {
    memset(r, 0, sizeof(*r));
    r->buf = buf;
    r->cap = cap;
}

static void reasm_start(gl_reasm_t *r, const gl_header_t *h, size_t total) {
    r->active = 1;
    r->sender = h->sender;
    r->round = h->round;
    r->kind = h->kind;
    r->layer = h->layer;
    r->step = h->step;
    r->count = h->chunk_count;
    r->dtype = h->dtype;
    r->scale = h->scale;
    r->model_version = h->model_version;
    r->samples = h->samples;
    r->receiver = h->receiver;
    r->cluster = h->cluster;
    r->flags = h->flags;
    r->total = (uint32_t)total;
    r->piece = 0;
    r->last_len = 0;
    r->received = 0;
    memset(r->seen, 0, sizeof(r->seen));
}

int gl_reasm_feed(gl_reasm_t *r, const gl_header_t *h, const uint8_t *payload, size_t total,
                  int *done, int *evicted) {
    size_t len = h->payload_len, offset;
    uint16_t idx = h->chunk_index, last = (uint16_t)(h->chunk_count - 1u);
    *done = 0;
    *evicted = 0;
    if (h->chunk_count > GL_MAX_CHUNKS || total > r->cap) return GL_E_TOO_BIG;
    if (r->active && (r->sender != h->sender || r->kind != h->kind || r->round != h->round ||
                      r->step != h->step || r->layer != h->layer)) {
        *evicted = 1;
        r->active = 0;
    }
    if (r->active && (r->count != h->chunk_count || r->model_version != h->model_version ||
                      r->dtype != h->dtype || r->scale != h->scale || r->samples != h->samples ||
                      r->receiver != h->receiver || r->cluster != h->cluster ||
                      r->flags != h->flags)) {
        r->active = 0;
        return GL_E_REASM;
    }
    if (!r->active) reasm_start(r, h, total);
    if (len == 0 || len > total) {
        r->active = 0;
        return GL_E_REASM;
    }
    if (idx < last) {
        /* every chunk but the last carries `piece` bytes; the last carries the rest (1..piece) */
        if ((r->piece && len != r->piece) || len * last >= total || total - len * last > len) {
            r->active = 0;
            return GL_E_REASM;
        }
        r->piece = (uint16_t)len;
        offset = (size_t)idx * len;
    } else {
        offset = total - len;
        if (r->piece && offset != (size_t)r->piece * last) {
            r->active = 0;
            return GL_E_REASM;
        }
    }
    /* the last chunk may have come first: it must sit right after the pieces */
    if (idx < last && r->last_len && (size_t)len * last != total - r->last_len) {
        r->active = 0;
        return GL_E_REASM;
    }
    if (idx == last) r->last_len = (uint16_t)len;
    memcpy(r->buf + offset, payload, len);
    if (!(r->seen[idx >> 3] & (1u << (idx & 7)))) {
        r->seen[idx >> 3] |= (uint8_t)(1u << (idx & 7));
        r->received++;
    }
    if (r->received == r->count) {
        r->active = 0;
        *done = 1;
    }
    return GL_OK;
}
