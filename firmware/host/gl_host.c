/* Host build of the firmware core: a shared library for pytest (ctypes). The serial link is a
 * byte queue: gl_host_feed() gives bytes to the device, gl_host_take() returns its replies. */
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>

#include "../core/gl_device.h"
#include "../core/gl_port.h"

#define OUT_CAP (1u << 20)
static unsigned char g_out[OUT_CAP];
static size_t g_out_len;
static size_t g_out_dropped;

void gl_port_write(const uint8_t *data, size_t n) {
    if (n > OUT_CAP - g_out_len) {
        g_out_dropped += n;
        return;
    }
    memcpy(g_out + g_out_len, data, n);
    g_out_len += n;
}

uint32_t gl_port_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

uint32_t gl_port_clock_hz(void) { return 0; }
uint32_t gl_port_free_ram(void) { return 0; }
void gl_port_alive(void) {}

/* The idle loop's check (inter-byte timeout), at the current time. */
void gl_host_poll(void) { gl_dev_poll(gl_port_now_us()); }

void gl_host_reset(void) {
    g_out_len = 0;
    g_out_dropped = 0;
    gl_dev_init();
}

void gl_host_feed(const uint8_t *data, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) gl_dev_rx_byte(data[i]);
}

/* Move up to cap reply bytes into out; return how many. */
size_t gl_host_take(uint8_t *out, size_t cap) {
    size_t n = g_out_len < cap ? g_out_len : cap;
    memcpy(out, g_out, n);
    memmove(g_out, g_out + n, g_out_len - n);
    g_out_len -= n;
    return n;
}

size_t gl_host_dropped(void) { return g_out_dropped; }
