/* The coprocessor: serial packets (COBS, CRC-32) carrying commands, over one static state.
 * Packet (before COBS, then a 0x00 delimiter): cmd u8 | seq u8 | args | crc32 u32 (LE, over
 * cmd..args). Reply: cmd|0x80 | seq | status u8 | data | crc32. A packet the link layer rejects
 * (COBS, CRC, length, inter-byte timeout) is answered with cmd 0xFF, seq 0, status = reason.
 * See docs/rp2040-link.md. */
#ifndef GL_DEVICE_H
#define GL_DEVICE_H
#include <stddef.h>
#include <stdint.h>

enum gl_command {
    GL_CMD_HELLO = 0x01,         /* -> proto u16, fw u32, limits, boot, session, name */
    GL_CMD_CONFIG = 0x02,        /* in u16, classes u16, opt u8, lr f64, wd f64, version u32, id u32, session u32 */
    GL_CMD_OPT_RESET = 0x03,     /* fresh optimiser */
    GL_CMD_LOAD = 0x04,          /* row0 u16, n u16, n x (label u8, in x f32) */
    GL_CMD_TRAIN = 0x05,         /* n u16, steps u16 (<= GL_MAX_TRAIN_STEPS) -> loss f32, us u32, t u32 */
    GL_CMD_PREDICT = 0x06,       /* row0 u16, n u16 -> n x classes f32 logits */
    GL_CMD_GET_FRAME = 0x07,     /* dtype, max_payload u16, chunk u16, header fields -> frame */
    GL_CMD_PUT_FRAME = 0x08,     /* mode u8 (0 own model, 1 merge), frame -> state u8, us u32 */
    GL_CMD_MERGE_RESET = 0x09,   /* weight u32 */
    GL_CMD_MERGE_FINALISE = 0x0A,/* -> merged u16, us u32 */
    GL_CMD_MERGE_DISCARD = 0x0B,
    GL_CMD_STATUS = 0x0C,        /* -> counters */
    GL_CMD_BENCH = 0x0D,         /* which u8, n u16 -> us u32, max abs error f32 */
};
#define GL_CMD_LINK_ERROR 0xFF

void gl_dev_init(void);
/* What the platform knows about this boot: watchdog reboots so far, 1 if the last reset was the
 * watchdog's (HELLO reports both). */
void gl_dev_set_boot(uint32_t boot_count, uint8_t reset_reason);
/* Call often (idle loop): drops a packet whose bytes stopped arriving (GL_INTERBYTE_US). */
void gl_dev_poll(uint32_t now_us);
/* Bytes the platform lost before the core saw them (receive ring full); STATUS reports them. */
void gl_dev_rx_dropped(uint32_t n);
/* One byte from the serial link; replies go out through gl_port_write. */
void gl_dev_rx_byte(uint8_t b);
/* Bytes of static state the core holds (for the RAM table). */
uint32_t gl_dev_state_bytes(void);
#endif
