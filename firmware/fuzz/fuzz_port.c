/* The platform of the fuzz builds: a clock the harness moves, and a serial line that checks
 * every reply the device sends (valid COBS, right length, CRC-32) and aborts if one is not. */
#include <stdlib.h>
#include <string.h>

#include "../core/gl_cobs.h"
#include "../core/gl_config.h"
#include "../core/gl_crc32.h"
#include "../core/gl_device.h"
#include "../core/gl_port.h"
#include "../core/gl_wire.h"
#include "fuzz_port.h"

static uint32_t g_now;
static uint8_t g_line[GL_COBS_MAX(GL_SER_MAX_PACKET) + 16];
static size_t g_len;

void fuzz_clock_advance(uint32_t us) { g_now += us; }

static void check_reply(const uint8_t *enc, size_t n) {
    static uint8_t raw[GL_SER_MAX_PACKET + 16];
    long m = gl_cobs_decode(enc, n, raw, sizeof(raw));
    if (m < 7 || (size_t)m > GL_SER_MAX_PACKET) abort(); /* the device sent a malformed packet */
    if (gl_crc32(0, raw, (size_t)m - 4) != gl_get_u32(raw + m - 4)) abort();
}

void gl_port_write(const uint8_t *data, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (data[i] == 0) {
            if (g_len) check_reply(g_line, g_len);
            g_len = 0;
        } else {
            if (g_len >= sizeof(g_line)) abort(); /* a reply longer than any packet */
            g_line[g_len++] = data[i];
        }
    }
}

uint32_t gl_port_now_us(void) { return g_now; }
uint32_t gl_port_clock_hz(void) { return 0; }
uint32_t gl_port_free_ram(void) { return 0; }
void gl_port_alive(void) {}

void fuzz_send(uint8_t cmd, uint8_t seq, const uint8_t *args, size_t n) {
    static uint8_t raw[GL_SER_MAX_PACKET + 16];
    static uint8_t enc[GL_COBS_MAX(GL_SER_MAX_PACKET + 16) + 2];
    size_t m, i;
    if (n > GL_SER_MAX_PACKET) n = GL_SER_MAX_PACKET; /* longer ones still overflow the device */
    raw[0] = cmd;
    raw[1] = seq;
    memcpy(raw + 2, args, n);
    gl_put_u32(raw + 2 + n, gl_crc32(0, raw, 2 + n));
    m = gl_cobs_encode(raw, n + 6, enc, sizeof(enc));
    gl_dev_rx_byte(0);
    for (i = 0; i < m; i++) gl_dev_rx_byte(enc[i]);
    gl_dev_rx_byte(0);
}
