/* libFuzzer target: raw bytes on the serial line (the link layer: delimiters, COBS, CRC,
 * overflow, the inter-byte timeout), with the clock jumping at every 0xFE byte. */
#include <stddef.h>
#include <stdint.h>

#include "../core/gl_device.h"
#include "../core/gl_port.h"
#include "fuzz_port.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t i;
    gl_dev_init();
    for (i = 0; i < size; i++) {
        if (data[i] == 0xFE) {
            fuzz_clock_advance(100000);
            gl_dev_poll(gl_port_now_us());
        }
        gl_dev_rx_byte(data[i]);
    }
    gl_dev_rx_byte(0);
    return 0;
}
