#include "gl_cobs.h"

size_t gl_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t r = 0, w = 1, code_at = 0;
    uint8_t code = 1;
    if (cap < 1) return 0;
    while (r < n) {
        if (in[r] == 0) {
            out[code_at] = code;
            code_at = w++;
            code = 1;
            if (w > cap) return 0;
        } else {
            if (w >= cap) return 0;
            out[w++] = in[r];
            code++;
            if (code == 0xFF) {
                out[code_at] = code;
                code_at = w++;
                code = 1;
                if (w > cap) return 0;
            }
        }
        r++;
    }
    if (code_at >= cap) return 0;
    out[code_at] = code;
    return w;
}

long gl_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t r = 0, w = 0;
    while (r < n) {
        uint8_t code = in[r++];
        size_t i;
        if (code == 0) return -1;
        if (r + (size_t)(code - 1) > n) return -1;
        for (i = 1; i < code; i++) {
            if (in[r] == 0) return -1;
            if (w >= cap) return -2;
            out[w++] = in[r++];
        }
        if (code != 0xFF && r < n) {
            if (w >= cap) return -2;
            out[w++] = 0;
        }
    }
    return (long)w;
}
