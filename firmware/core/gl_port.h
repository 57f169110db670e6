/* What the core needs from its platform: the Pico build (pico/main.c) or the host build
 * (host/gl_host.c). */
#ifndef GL_PORT_H
#define GL_PORT_H
#include <stddef.h>
#include <stdint.h>
void gl_port_write(const uint8_t *data, size_t n); /* bytes to the serial link */
uint32_t gl_port_now_us(void);                     /* a free-running microsecond clock */
uint32_t gl_port_clock_hz(void);                   /* CPU clock (0 on the host) */
uint32_t gl_port_free_ram(void);                   /* bytes between heap end and stack (0: n/a) */
void gl_port_alive(void);                          /* inside long commands: feed the watchdog */
#endif
