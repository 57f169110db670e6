#ifndef GL_COBS_H
#define GL_COBS_H
#include <stddef.h>
#include <stdint.h>
/* Consistent Overhead Byte Stuffing: no 0x00 in the output; a 0x00 ends a packet on the line. */
#define GL_COBS_MAX(n) ((n) + (n) / 254 + 1)
/* Encode n bytes into out (cap bytes); return the encoded length or 0 if out is too small. */
size_t gl_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/* Decode n bytes (without the 0x00 delimiter) into out; return the length, or -1 if malformed
 * (a zero inside, a code past the end) or -2 if out is too small. */
long gl_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
#endif
