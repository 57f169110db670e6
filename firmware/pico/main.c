/* Pico build: the firmware core on UART0 (GP0 TX, GP1 RX), raw 8N1 binary, no stdio
 * translation. Build: see docs/rp2040.md (CMakeLists.txt in firmware/). */
#include "hardware/clocks.h"
#include "hardware/gpio.h"
#include "hardware/uart.h"
#include "pico/stdlib.h"

#include "gl_device.h"
#include "gl_port.h"

#ifndef GL_UART_BAUD
#define GL_UART_BAUD 921600
#endif

extern char end;      /* first free byte after .bss (linker) */

void gl_port_write(const uint8_t *data, size_t n) { uart_write_blocking(uart0, data, n); }
uint32_t gl_port_now_us(void) { return time_us_32(); }
uint32_t gl_port_clock_hz(void) { return clock_get_hz(clk_sys); }
uint32_t gl_port_free_ram(void) {
    char here;
    return (uint32_t)(&here - &end);
}

int main(void) {
    uart_init(uart0, GL_UART_BAUD);
    gpio_set_function(0, GPIO_FUNC_UART);
    gpio_set_function(1, GPIO_FUNC_UART);
    uart_set_fifo_enabled(uart0, true);
    gl_dev_init();
    for (;;) {
        while (uart_is_readable(uart0)) gl_dev_rx_byte((uint8_t)uart_getc(uart0));
    }
}
