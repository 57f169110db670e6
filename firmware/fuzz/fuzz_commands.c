/* libFuzzer target: the command decoder. The input is a sequence of commands, each
 * cmd u8 | len u16 | args; the harness wraps each into a valid packet (COBS, CRC) so that every
 * command's argument checks are reached. The device starts configured (a 16 -> 4 head) so
 * LOAD, TRAIN, GET_FRAME, PUT_FRAME, the merge and BENCH commands do work. A PUT_FRAME whose
 * args hold a frame gets that frame's CRC fixed up (flag bit 0x80 of its mode byte cleared). */
#include <string.h>

#include "../core/gl_config.h"
#include "../core/gl_device.h"
#include "../core/gl_crc32.h"
#include "../core/gl_wire.h"
#include "fuzz_port.h"

static void configure(void) {
    uint8_t a[33];
    double lr = 0.1, wd = 0.0;
    memset(a, 0, sizeof(a));
    gl_put_u16(a, 16);
    gl_put_u16(a + 2, 4);
    a[4] = 0;
    memcpy(a + 5, &lr, 8);
    memcpy(a + 13, &wd, 8);
    gl_put_u32(a + 21, 0); /* model version */
    gl_put_u32(a + 25, 3);
    gl_put_u32(a + 29, 1);
    fuzz_send(0x02, 1, a, sizeof(a));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t args[GL_SER_MAX_DATA + 8];
    size_t at = 0;
    uint8_t seq = 2;
    gl_dev_init();
    configure();
    while (at + 3 <= size) {
        uint8_t cmd = data[at];
        size_t n = (size_t)(data[at + 1] | (data[at + 2] << 8)) % (GL_SER_MAX_DATA + 8);
        at += 3;
        if (n > size - at) n = size - at;
        memcpy(args, data + at, n);
        at += n;
        if (cmd == 0x08 && n > 1 + GL_OVERHEAD && (args[0] & 0x80)) {
            size_t flen = n - 1;
            args[0] &= 0x7F;
            gl_put_u32(args + 1 + 42, (uint32_t)(flen - GL_OVERHEAD));
            gl_put_u32(args + 1 + flen - 4, gl_crc32(0, args + 1, flen - 4));
        }
        fuzz_send(cmd, seq++, args, n);
        fuzz_clock_advance(10);
    }
    return 0;
}
