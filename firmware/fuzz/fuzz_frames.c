/* libFuzzer target: frame parsing and chunk reassembly. The input is a sequence of frames,
 * each len u16 | bytes (CRC and length fields fixed up when the first byte is odd, so parsing
 * reaches the header rules), fed to gl_frame_parse and gl_reasm_feed against a 1,610-value
 * model; a complete message is read back with gl_model_get and merged. Also COBS-decodes the
 * whole input. */
#include <string.h>

#include "../core/gl_cobs.h"
#include "../core/gl_config.h"
#include "../core/gl_crc32.h"
#include "../core/gl_errors.h"
#include "../core/gl_fedavg.h"
#include "../core/gl_wire.h"

static uint32_t buf[GL_MAX_MODEL_BYTES / 4];
static uint8_t frame[4096];
static uint8_t scratch[8192];
static gl_fedavg_t acc;
static float own[GL_MAX_PARAMS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gl_reasm_t r;
    size_t at = 0;
    (void)gl_cobs_decode(data, size, scratch, sizeof(scratch));
    gl_reasm_init(&r, (uint8_t *)buf, sizeof(buf));
    (void)gl_fedavg_reset(&acc, GL_MAX_PARAMS, 0, own, 1.0);
    while (at + 2 <= size) {
        size_t n = (size_t)(data[at] | (data[at + 1] << 8)) % sizeof(frame);
        gl_header_t h;
        const uint8_t *payload;
        int done = 0, evicted = 0;
        at += 2;
        if (n > size - at) n = size - at;
        memcpy(frame, data + at, n);
        at += n;
        if (n >= GL_OVERHEAD && (frame[0] & 1)) {
            frame[0] = 'G';
            frame[1] = 'L';
            gl_put_u32(frame + 42, (uint32_t)(n - GL_OVERHEAD));
            gl_put_u32(frame + n - 4, gl_crc32(0, frame, n - 4));
        }
        if (gl_frame_parse(frame, n, &h, &payload) != GL_OK || !gl_kind_has_model(h.kind))
            continue;
        {
            size_t total = gl_model_bytes(h.dtype, GL_MAX_PARAMS);
            const uint8_t *whole = payload;
            if (total == 0) continue;
            if (h.chunk_count == 1) {
                if (h.payload_len != total) continue;
                done = 1;
            } else {
                if (gl_reasm_feed(&r, &h, payload, total, &done, &evicted) != GL_OK) continue;
                whole = (const uint8_t *)buf;
            }
            if (done)
                (void)gl_fedavg_add_payload(&acc, h.sender, whole, h.dtype, h.scale,
                                            (double)h.samples);
        }
    }
    if (acc.active) (void)gl_fedavg_finalise(&acc, own);
    {
        size_t i;
        for (i = 0; i < GL_MAX_PARAMS; i++)
            if (!gl_is_finite(own[i])) own[i] = 0.0f; /* the next input starts from a model */
    }
    return 0;
}
