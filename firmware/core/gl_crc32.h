#ifndef GL_CRC32_H
#define GL_CRC32_H
#include <stddef.h>
#include <stdint.h>
/* zlib's CRC-32 (reflected 0xEDB88320, init and final xor 0xFFFFFFFF). Pass 0 to start. */
uint32_t gl_crc32(uint32_t crc, const uint8_t *data, size_t n);
#endif
