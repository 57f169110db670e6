/* Pico build: the firmware core on UART0 (GP0 TX, GP1 RX), raw 8N1 binary, no stdio
 * translation. Build: see docs/rp2040.md (CMakeLists.txt in firmware/).
 *
 * Receive is interrupt-driven: the UART0 IRQ moves bytes from the hardware FIFO into a ring of
 * GL_RX_RING bytes, so bytes arriving while a command computes are kept (or counted as dropped
 * when the ring is full). The main loop feeds the core from the ring, checks the inter-byte
 * timeout, feeds the watchdog and sleeps (WFI) until the next byte or the 10 ms tick. */
#include "hardware/clocks.h"
#include "hardware/gpio.h"
#include "hardware/irq.h"
#include "hardware/sync.h"
#include "hardware/uart.h"
#include "hardware/watchdog.h"
#include "pico/stdlib.h"

#include "gl_config.h"
#include "gl_device.h"
#include "gl_port.h"

#ifndef GL_UART_BAUD
#define GL_UART_BAUD 921600
#endif
#define BOOT_MAGIC 0x474C4254u /* "GLBT" in watchdog scratch 1: scratch 0 counts reboots */

extern char end;      /* first free byte after .bss (linker) */

static uint8_t ring[GL_RX_RING];
static volatile uint32_t ring_head, ring_tail, ring_dropped;

static void on_uart_rx(void) {
    while (uart_is_readable(uart0)) {
        uint8_t b = (uint8_t)uart_get_hw(uart0)->dr;
        uint32_t next = (ring_head + 1u) % GL_RX_RING;
        if (next == ring_tail) {
            ring_dropped++;
        } else {
            ring[ring_head] = b;
            ring_head = next;
        }
    }
}

static bool on_tick(repeating_timer_t *t) {
    (void)t;
    return true; /* only wakes the main loop from WFI */
}

void gl_port_write(const uint8_t *data, size_t n) { uart_write_blocking(uart0, data, n); }
uint32_t gl_port_now_us(void) { return time_us_32(); }
uint32_t gl_port_clock_hz(void) { return clock_get_hz(clk_sys); }
uint32_t gl_port_free_ram(void) {
    char here;
    return (uint32_t)(&here - &end);
}
void gl_port_alive(void) { watchdog_update(); }

int main(void) {
    repeating_timer_t tick;
    uint32_t boots = 0;
    uint8_t by_watchdog = watchdog_caused_reboot() ? 1 : 0;
    if (watchdog_hw->scratch[1] == BOOT_MAGIC) boots = watchdog_hw->scratch[0] + (by_watchdog ? 1u : 0u);
    watchdog_hw->scratch[0] = boots;
    watchdog_hw->scratch[1] = BOOT_MAGIC;
    uart_init(uart0, GL_UART_BAUD);
    gpio_set_function(0, GPIO_FUNC_UART);
    gpio_set_function(1, GPIO_FUNC_UART);
    uart_set_fifo_enabled(uart0, true);
    gl_dev_init();
    gl_dev_set_boot(boots, by_watchdog);
    irq_set_exclusive_handler(UART0_IRQ, on_uart_rx);
    irq_set_enabled(UART0_IRQ, true);
    uart_set_irq_enables(uart0, true, false); /* RX level and RX timeout */
    add_repeating_timer_ms(-10, on_tick, NULL, &tick);
    watchdog_enable(GL_WATCHDOG_MS, true);
    for (;;) {
        uint32_t irq, dropped;
        watchdog_update();
        while (ring_tail != ring_head) {
            uint8_t b = ring[ring_tail];
            ring_tail = (ring_tail + 1u) % GL_RX_RING;
            gl_dev_rx_byte(b);
        }
        if (ring_dropped) {
            irq = save_and_disable_interrupts();
            dropped = ring_dropped;
            ring_dropped = 0;
            restore_interrupts(irq);
            gl_dev_rx_dropped(dropped);
        }
        gl_dev_poll(time_us_32());
        irq = save_and_disable_interrupts();
        if (ring_tail == ring_head) __wfi(); /* a pending IRQ still wakes it */
        restore_interrupts(irq);
    }
}
