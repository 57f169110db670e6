#include "gl_device.h"

#include <math.h>
#include <string.h>

#include "gl_cobs.h"
#include "gl_config.h"
#include "gl_crc32.h"
#include "gl_errors.h"
#include "gl_fedavg.h"
#include "gl_head.h"
#include "gl_port.h"
#include "gl_wire.h"

#define RX_CAP GL_COBS_MAX(GL_SER_MAX_PACKET)
#define DATA_AT 3 /* reply: cmd, seq, status, data */

static const char k_name[] = "gossip_learning-rp2040";

/* Everything the firmware holds: static, sized at compile time (docs/rp2040.md RAM table). */
static struct {
    gl_head_t head;                                  /* params + Adam m, v */
    gl_fedavg_t acc;                                 /* float64 S, senders */
    gl_reasm_t reasm;
    uint32_t reasm_buf[GL_MAX_MODEL_BYTES / 4];      /* one chunked model message */
    float batch_x[GL_MAX_BATCH * GL_MAX_IN];         /* the loaded minibatch */
    uint8_t batch_y[GL_MAX_BATCH];
    float delta[GL_MAX_BATCH * GL_MAX_CLASSES];      /* logits / softmax - onehot */
    uint8_t rx[RX_CAP];                              /* COBS bytes of one packet, decoded in place */
    uint32_t rx_len;
    int rx_over;
    uint8_t tx[GL_SER_MAX_PACKET];                   /* one reply before COBS */
    int configured;
    int diverged;                                    /* the head is not finite: refuse to use it */
    uint32_t model_version, robot_id, session;
    uint32_t boot_count, last_rx_us;
    uint8_t reset_reason;
    uint32_t rx_packets, tx_packets, frames_ok, merged_total, train_steps, rx_dropped;
    uint32_t last_train_us, last_decode_us, last_merge_us, last_finalise_us, last_link_us;
    uint32_t rejects[GL_N_STATUS];
} S;

uint32_t gl_dev_state_bytes(void) { return (uint32_t)sizeof(S); }

void gl_dev_init(void) {
    memset(&S, 0, sizeof(S));
    gl_reasm_init(&S.reasm, (uint8_t *)S.reasm_buf, sizeof(S.reasm_buf));
}

void gl_dev_set_boot(uint32_t boot_count, uint8_t reset_reason) {
    S.boot_count = boot_count;
    S.reset_reason = reset_reason;
}

/* COBS-encode tx[0..n) straight to the port, block by block, then the 0x00 delimiter. */
static void send_cobs(const uint8_t *buf, size_t n) {
    uint8_t block[255];
    size_t r = 0;
    for (;;) {
        size_t len = 0;
        while (r + len < n && buf[r + len] != 0 && len < 254) len++;
        block[0] = (uint8_t)(len + 1);
        memcpy(block + 1, buf + r, len);
        gl_port_write(block, len + 1);
        r += len;
        if (len == 254) {
            if (r == n) break;
            continue;
        }
        if (r == n) break;
        r++; /* the zero this block stands for */
        if (r == n) {
            block[0] = 1; /* trailing zero: one empty block */
            gl_port_write(block, 1);
            break;
        }
    }
    block[0] = 0;
    gl_port_write(block, 1);
}

static void reply(uint8_t cmd, uint8_t seq, int status, size_t len) {
    size_t n = DATA_AT + len;
    if (status != GL_OK) {
        if (status > 0 && status < GL_N_STATUS) S.rejects[status]++;
        n = DATA_AT;
    }
    S.tx[0] = cmd;
    S.tx[1] = seq;
    S.tx[2] = (uint8_t)status;
    gl_put_u32(S.tx + n, gl_crc32(0, S.tx, n));
    send_cobs(S.tx, n + 4);
    S.tx_packets++;
}

/* ------------------------------------------------------------------ commands */

/* Layout: docs/rp2040-link.md (HELLO). */
static int cmd_hello(uint8_t *out, size_t *len) {
    gl_put_u16(out, GL_PROTO_VERSION);
    gl_put_u32(out + 2, GL_FW_VERSION);
    gl_put_u16(out + 6, GL_MAX_IN);
    gl_put_u16(out + 8, GL_MAX_CLASSES);
    gl_put_u16(out + 10, GL_MAX_BATCH);
    gl_put_u16(out + 12, GL_MAX_PARAMS);
    gl_put_u16(out + 14, GL_SER_MAX_DATA);
    gl_put_u16(out + 16, GL_DEFAULT_MTU);
    gl_put_u16(out + 18, GL_MAX_CHUNKS);
    gl_put_u16(out + 20, GL_MAX_TRAIN_STEPS);
    gl_put_u16(out + 22, GL_MAX_SENDERS);
    gl_put_u32(out + 24, GL_RAM_BUDGET);
    gl_put_u32(out + 28, (uint32_t)sizeof(S));
    gl_put_f32(out + 32, (float)GL_MAX_LR);
    gl_put_f32(out + 36, (float)GL_MAX_WD);
    gl_put_f32(out + 40, GL_MAX_ABS_FEATURE);
    gl_put_u32(out + 44, GL_INTERBYTE_US);
    gl_put_u32(out + 48, GL_WATCHDOG_MS);
    gl_put_u32(out + 52, S.boot_count);
    out[56] = S.reset_reason;
    out[57] = (uint8_t)S.configured;
    gl_put_u32(out + 58, S.session);
    gl_put_u32(out + 62, gl_port_now_us());
    memcpy(out + 66, k_name, sizeof(k_name) - 1);
    *len = 66 + sizeof(k_name) - 1;
    return GL_OK;
}

static int cmd_config(const uint8_t *a, size_t n) {
    double lr, wd;
    int st;
    if (n != 33) return GL_E_ARGS;
    memcpy(&lr, a + 5, 8); /* f64 little-endian: both targets are little-endian */
    memcpy(&wd, a + 13, 8);
    st = gl_head_configure(&S.head, gl_get_u16(a), gl_get_u16(a + 2), a[4], lr, wd);
    if (st != GL_OK) return st;
    S.model_version = gl_get_u32(a + 21);
    S.robot_id = gl_get_u32(a + 25);
    S.session = gl_get_u32(a + 29);
    S.diverged = 0;
    gl_fedavg_discard(&S.acc);
    S.reasm.active = 0;
    memset(S.batch_x, 0, sizeof(S.batch_x));
    memset(S.batch_y, 0, sizeof(S.batch_y));
    S.configured = 1;
    return GL_OK;
}

static int cmd_load(const uint8_t *a, size_t n) {
    uint32_t row0, rows, d = S.head.in_dim, r, i, stride = 1u + 4u * d;
    if (n < 4) return GL_E_ARGS;
    row0 = gl_get_u16(a);
    rows = gl_get_u16(a + 2);
    if (rows < 1 || row0 + rows > GL_MAX_BATCH || n != 4 + (size_t)rows * stride) return GL_E_ARGS;
    for (r = 0; r < rows; r++) {
        const uint8_t *p = a + 4 + (size_t)r * stride;
        if (p[0] >= S.head.classes) return GL_E_ARGS;
        for (i = 0; i < d; i++) {
            float v = gl_get_f32(p + 1 + 4 * i);
            if (!gl_is_finite(v)) return GL_E_NONFINITE;
            if (!(fabsf(v) <= GL_MAX_ABS_FEATURE)) return GL_E_RANGE;
        }
    }
    for (r = 0; r < rows; r++) {
        const uint8_t *p = a + 4 + (size_t)r * stride;
        float *x = S.batch_x + (size_t)(row0 + r) * GL_MAX_IN;
        S.batch_y[row0 + r] = p[0];
        for (i = 0; i < d; i++) x[i] = gl_get_f32(p + 1 + 4 * i);
    }
    return GL_OK;
}

static int cmd_train(const uint8_t *a, size_t n, uint8_t *out, size_t *len) {
    uint32_t rows, steps, s, t0;
    float loss = 0.0f;
    if (n != 4) return GL_E_ARGS;
    rows = gl_get_u16(a);
    steps = gl_get_u16(a + 2);
    if (rows < 1 || rows > GL_MAX_BATCH || steps < 1 || steps > GL_MAX_TRAIN_STEPS)
        return GL_E_ARGS; /* the time budget of one command */
    if (S.diverged) return GL_E_DIVERGED;
    t0 = gl_port_now_us();
    for (s = 0; s < steps; s++) {
        loss = gl_head_train_step(&S.head, S.batch_x, GL_MAX_IN, S.batch_y, rows, S.delta);
        gl_port_alive();
    }
    S.last_train_us = gl_port_now_us() - t0;
    S.train_steps += steps;
    if (!gl_is_finite(loss) || gl_model_check(S.head.params, S.head.n_params) != GL_OK) {
        S.diverged = 1; /* until a PUT_FRAME of an own model or a CONFIG replaces it */
        return GL_E_DIVERGED;
    }
    gl_put_f32(out, loss);
    gl_put_u32(out + 4, S.last_train_us);
    gl_put_u32(out + 8, S.head.t);
    *len = 12;
    return GL_OK;
}

static int cmd_predict(const uint8_t *a, size_t n, uint8_t *out, size_t *len) {
    uint32_t row0, rows, i, k = S.head.classes;
    if (n != 4) return GL_E_ARGS;
    row0 = gl_get_u16(a);
    rows = gl_get_u16(a + 2);
    if (rows < 1 || row0 + rows > GL_MAX_BATCH || (size_t)rows * k * 4 > GL_SER_MAX_DATA)
        return GL_E_ARGS;
    gl_head_forward(&S.head, S.batch_x + (size_t)row0 * GL_MAX_IN, GL_MAX_IN, rows, S.delta);
    for (i = 0; i < rows * k; i++) gl_put_f32(out + 4 * i, S.delta[i]);
    *len = (size_t)rows * k * 4;
    return GL_OK;
}

static int cmd_get_frame(const uint8_t *a, size_t n, uint8_t *out, size_t *len) {
    gl_header_t h;
    uint32_t total, mp, count, idx, b0, b1;
    uint8_t *payload = out + GL_HEADER_SIZE;
    if (n != 25) return GL_E_ARGS;
    memset(&h, 0, sizeof(h));
    h.dtype = a[0];
    mp = gl_get_u16(a + 1);
    idx = gl_get_u16(a + 3);
    h.kind = a[5];
    h.layer = a[6];
    h.receiver = gl_get_u32(a + 7);
    h.round = gl_get_u32(a + 11);
    h.step = gl_get_u16(a + 15);
    h.cluster = (int32_t)gl_get_u32(a + 17);
    h.samples = gl_get_u32(a + 21);
    if (gl_model_bytes(h.dtype, 1) == 0 || !gl_kind_has_model(h.kind) || h.layer > GL_LAYER_MAX)
        return GL_E_ARGS;
    if (S.diverged || gl_model_check(S.head.params, S.head.n_params) != GL_OK)
        return GL_E_DIVERGED; /* never send a model a peer refuses */
    if (gl_model_fits(S.head.params, S.head.n_params, h.dtype) != GL_OK)
        return GL_E_RANGE; /* fp16 would overflow to Inf, which every receiver refuses */
    total = (uint32_t)gl_model_bytes(h.dtype, S.head.n_params);
    count = (uint32_t)gl_chunk_count(total, mp);
    if (idx >= count || count > 0xFFFFu) return GL_E_ARGS;
    b0 = count == 1 ? 0 : idx * mp;
    b1 = count == 1 ? total : (b0 + mp < total ? b0 + mp : total);
    if (GL_OVERHEAD + (b1 - b0) > GL_SER_MAX_DATA) return GL_E_TOO_BIG;
    h.sender = S.robot_id;
    h.model_version = S.model_version;
    h.chunk_index = (uint16_t)idx;
    h.chunk_count = (uint16_t)count;
    h.scale = h.dtype == GL_DT_I8 ? gl_model_scale(S.head.params, S.head.n_params) : 1.0f;
    (void)gl_model_encode_range(S.head.params, S.head.n_params, h.dtype, b0, b1, payload);
    *len = gl_frame_encode(&h, payload, b1 - b0, out, GL_SER_MAX_DATA);
    return *len ? GL_OK : GL_E_TOO_BIG;
}

static int cmd_put_frame(const uint8_t *a, size_t n, uint8_t *out, size_t *len) {
    gl_header_t h;
    const uint8_t *payload;
    uint32_t t0 = gl_port_now_us(), width, total, i;
    uint8_t mode;
    int st, done = 1, evicted = 0;
    if (n < 1 || a[0] > 1) return GL_E_ARGS;
    mode = a[0];
    st = gl_frame_parse(a + 1, n - 1, &h, &payload);
    if (st != GL_OK) return st;
    if (!gl_kind_has_model(h.kind)) return GL_E_NOT_MODEL;
    width = gl_dtype_width(h.dtype);
    if (gl_model_bytes(h.dtype, 1) == 0) return GL_E_CODE;
    if (h.model_version != S.model_version) return GL_E_MODEL_VERSION;
    total = (uint32_t)gl_model_bytes(h.dtype, S.head.n_params);
    if (h.chunk_count == 1) {
        if (width && h.payload_len % width) return GL_E_WIDTH;
        if (h.payload_len != total) return GL_E_MODEL_SIZE;
    } else {
        /* chunks are cut by bytes (wire.encode_frames): only the whole must be whole */
        if (total > sizeof(S.reasm_buf)) return GL_E_TOO_BIG;
        st = gl_reasm_feed(&S.reasm, &h, payload, total, &done, &evicted);
        if (evicted) S.rejects[GL_E_EVICTED]++;
        if (st != GL_OK) return st;
        payload = (const uint8_t *)S.reasm_buf;
    }
    if (done) {
        if (mode == 0) {
            for (i = 0; i < S.head.n_params; i++) {
                float v;
                st = gl_model_get(payload, i, h.dtype, h.scale, &v);
                if (st != GL_OK) return st;
            }
            for (i = 0; i < S.head.n_params; i++)
                (void)gl_model_get(payload, i, h.dtype, h.scale, &S.head.params[i]);
            S.diverged = 0;
        } else {
            uint32_t t1 = gl_port_now_us();
            st = gl_fedavg_add_payload(&S.acc, h.sender, payload, h.dtype, h.scale,
                                       (double)h.samples);
            S.last_merge_us = gl_port_now_us() - t1;
            if (st != GL_OK) return st;
            S.merged_total++;
        }
        S.frames_ok++;
    }
    S.last_decode_us = gl_port_now_us() - t0;
    out[0] = (uint8_t)done;
    gl_put_u32(out + 1, S.last_decode_us);
    *len = 5;
    return GL_OK;
}

static int cmd_status(uint8_t *out, size_t *len) {
    uint32_t i, v[15];
    v[0] = GL_FW_VERSION;
    v[1] = S.rx_packets;
    v[2] = S.tx_packets;
    v[3] = S.frames_ok;
    v[4] = S.merged_total;
    v[5] = S.train_steps;
    v[6] = gl_port_free_ram();
    v[7] = (uint32_t)sizeof(S);
    v[8] = gl_port_clock_hz();
    v[9] = S.last_train_us;
    v[10] = S.last_decode_us;
    v[11] = S.last_merge_us;
    v[12] = S.last_finalise_us;
    v[13] = S.rx_dropped;
    v[14] = S.last_link_us;
    for (i = 0; i < 15; i++) gl_put_u32(out + 4 * i, v[i]);
    gl_put_u16(out + 60, GL_N_STATUS);
    for (i = 0; i < GL_N_STATUS; i++) gl_put_u32(out + 62 + 4 * i, S.rejects[i]);
    *len = 62 + 4 * GL_N_STATUS;
    return GL_OK;
}

/* Soft-float vs fixed point, on this MCU: 0 float forward, 1 Q15 forward (n loaded rows);
 * 2 merge-add into the float64 accumulator, 3 into float32, 4 into int64 Q24. Clobbers the
 * loaded batch (3, 4) and needs the accumulator closed. Error: max |result - float result|. */
static int cmd_bench(const uint8_t *a, size_t n, uint8_t *out, size_t *len) {
    uint32_t which, rows, t0, us = 0, i, P = S.head.n_params, k = S.head.classes;
    float err = 0.0f;
    float *ref = (float *)(void *)S.acc.sum; /* 12.9 KB of scratch while the step is closed */
    const float *w0 = S.head.params;
    if (n != 3) return GL_E_ARGS;
    which = a[0];
    rows = gl_get_u16(a + 1);
    if (S.acc.active || rows < 1 || rows > GL_MAX_BATCH || which > 4) return GL_E_ARGS;
    if (S.reasm.active) return GL_E_STATE; /* its scratch would overwrite a partial message */
    if (gl_model_check(w0, P) != GL_OK) return GL_E_DIVERGED;
    if (which == 4)
        for (i = 0; i < P; i++)
            if (!(fabsf(w0[i]) < 127.0f)) return GL_E_RANGE; /* Q24 holds |w| < 128 */
    if (which <= 1) {
        int16_t xq[GL_MAX_IN];
        gl_head_forward(&S.head, S.batch_x, GL_MAX_IN, rows, ref);
        t0 = gl_port_now_us();
        if (which == 0) gl_head_forward(&S.head, S.batch_x, GL_MAX_IN, rows, S.delta);
        else
            gl_head_forward_q15(&S.head, S.batch_x, GL_MAX_IN, rows, (int16_t *)S.reasm_buf, xq,
                                S.delta);
        us = gl_port_now_us() - t0;
        for (i = 0; i < rows * k; i++) err = fmaxf(err, fabsf(S.delta[i] - ref[i]));
    } else {
        /* S = 3 w; add 5 w (the same model stands in for a neighbour's); result S / 8 = w */
        float *fsum = S.batch_x;
        int64_t *qsum = (int64_t *)(void *)(S.batch_x + GL_MAX_PARAMS + 2);
        const float *w = S.head.params;
        if (which == 2) {
            (void)gl_fedavg_reset(&S.acc, P, 0, w, 3.0);
            t0 = gl_port_now_us();
            (void)gl_fedavg_add(&S.acc, 1, w, 5.0);
            us = gl_port_now_us() - t0;
            (void)gl_fedavg_finalise(&S.acc, S.delta);
        } else if (which == 3) {
            for (i = 0; i < P; i++) fsum[i] = w[i] * 3.0f;
            t0 = gl_port_now_us();
            for (i = 0; i < P; i++) fsum[i] += w[i] * 5.0f;
            us = gl_port_now_us() - t0;
            for (i = 0; i < P; i++) err = fmaxf(err, fabsf(fsum[i] / 8.0f - w[i]));
        } else {
            for (i = 0; i < P; i++) qsum[i] = (int64_t)(int32_t)(w[i] * 16777216.0f) * 3;
            t0 = gl_port_now_us();
            for (i = 0; i < P; i++) qsum[i] += (int64_t)(int32_t)(w[i] * 16777216.0f) * 5;
            us = gl_port_now_us() - t0;
            for (i = 0; i < P; i++)
                err = fmaxf(err, fabsf((float)((double)(qsum[i] / 8) / 16777216.0) - w[i]));
        }
    }
    gl_put_u32(out, us);
    gl_put_f32(out + 4, err);
    *len = 8;
    return GL_OK;
}

static void dispatch(uint8_t cmd, uint8_t seq, const uint8_t *a, size_t n) {
    uint8_t *out = S.tx + DATA_AT;
    size_t len = 0;
    int st;
    if (cmd != GL_CMD_HELLO && cmd != GL_CMD_CONFIG && cmd != GL_CMD_STATUS && !S.configured &&
        cmd >= GL_CMD_OPT_RESET && cmd <= GL_CMD_BENCH) {
        reply((uint8_t)(cmd | 0x80), seq, GL_E_STATE, 0);
        return;
    }
    switch (cmd) {
    case GL_CMD_HELLO: st = n ? GL_E_ARGS : cmd_hello(out, &len); break;
    case GL_CMD_CONFIG: st = cmd_config(a, n); break;
    case GL_CMD_OPT_RESET:
        st = n ? GL_E_ARGS : GL_OK;
        if (st == GL_OK) gl_head_reset_optimizer(&S.head);
        break;
    case GL_CMD_LOAD: st = cmd_load(a, n); break;
    case GL_CMD_TRAIN: st = cmd_train(a, n, out, &len); break;
    case GL_CMD_PREDICT: st = cmd_predict(a, n, out, &len); break;
    case GL_CMD_GET_FRAME: st = cmd_get_frame(a, n, out, &len); break;
    case GL_CMD_PUT_FRAME: st = cmd_put_frame(a, n, out, &len); break;
    case GL_CMD_MERGE_RESET:
        if (n != 4) st = GL_E_ARGS;
        else if (S.diverged || gl_model_check(S.head.params, S.head.n_params) != GL_OK)
            st = GL_E_DIVERGED;
        else
            st = gl_fedavg_reset(&S.acc, S.head.n_params, S.robot_id, S.head.params,
                                 (double)gl_get_u32(a));
        break;
    case GL_CMD_MERGE_FINALISE: {
        uint32_t t0 = gl_port_now_us(), merged = gl_fedavg_merged(&S.acc);
        st = n ? GL_E_ARGS : gl_fedavg_finalise(&S.acc, S.head.params);
        if (st == GL_OK && gl_model_check(S.head.params, S.head.n_params) != GL_OK) {
            S.diverged = 1;
            st = GL_E_DIVERGED;
        }
        S.last_finalise_us = gl_port_now_us() - t0;
        gl_put_u16(out, (uint16_t)merged);
        gl_put_u32(out + 2, S.last_finalise_us);
        len = 6;
        break;
    }
    case GL_CMD_MERGE_DISCARD:
        st = n ? GL_E_ARGS : GL_OK;
        gl_fedavg_discard(&S.acc);
        break;
    case GL_CMD_STATUS: st = n ? GL_E_ARGS : cmd_status(out, &len); break;
    case GL_CMD_BENCH: st = cmd_bench(a, n, out, &len); break;
    default: st = GL_E_COMMAND; break;
    }
    reply((uint8_t)(cmd | 0x80), seq, st, len);
}

static void link_error(int reason) { reply(GL_CMD_LINK_ERROR, 0, reason, 0); }

static void packet_end(void) {
    long n;
    uint32_t len = S.rx_len, t0 = gl_port_now_us();
    int over = S.rx_over;
    S.rx_len = 0;
    S.rx_over = 0;
    if (over) {
        link_error(GL_E_SER_OVERFLOW);
        return;
    }
    if (len == 0) return; /* idle delimiters resynchronise the link */
    n = gl_cobs_decode(S.rx, len, S.rx, sizeof(S.rx));
    if (n < 0) {
        link_error(n == -2 ? GL_E_SER_OVERFLOW : GL_E_COBS);
        return;
    }
    if (n < 6) {
        link_error(GL_E_SER_SHORT);
        return;
    }
    if (gl_crc32(0, S.rx, (size_t)n - 4) != gl_get_u32(S.rx + n - 4)) {
        link_error(GL_E_SER_CRC);
        return;
    }
    S.rx_packets++;
    if (S.rx[0] != GL_CMD_STATUS) /* STATUS reports the packet before it */
        S.last_link_us = gl_port_now_us() - t0; /* the link layer's work: COBS decode, CRC-32 */
    dispatch(S.rx[0], S.rx[1], S.rx + 2, (size_t)n - 6);
}

void gl_dev_rx_byte(uint8_t b) {
    S.last_rx_us = gl_port_now_us();
    if (b == 0) {
        packet_end();
        return;
    }
    if (S.rx_len < sizeof(S.rx)) S.rx[S.rx_len++] = b;
    else S.rx_over = 1;
}

void gl_dev_poll(uint32_t now_us) {
    if ((S.rx_len || S.rx_over) && now_us - S.last_rx_us > GL_INTERBYTE_US) {
        S.rx_len = 0; /* a packet cut off mid-way: drop it, resynchronise at the next 0x00 */
        S.rx_over = 0;
        link_error(GL_E_SER_TIMEOUT);
    }
}

void gl_dev_rx_dropped(uint32_t n) { S.rx_dropped += n; }
