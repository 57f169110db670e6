#ifndef GL_FUZZ_PORT_H
#define GL_FUZZ_PORT_H
#include <stddef.h>
#include <stdint.h>
void fuzz_clock_advance(uint32_t us);
/* A valid packet (COBS of cmd, seq, args, crc32, between delimiters) into the device. */
void fuzz_send(uint8_t cmd, uint8_t seq, const uint8_t *args, size_t n);
#endif
