/* Compile-time limits of the firmware: every buffer is static and sized from these. */
#ifndef GL_CONFIG_H
#define GL_CONFIG_H

#define GL_FW_VERSION 0x00010000u   /* 1.0.0 */
#define GL_PROTO_VERSION 1u         /* serial command protocol */
#define GL_WIRE_VERSION 1u          /* docs/wire-format.md */

#ifndef GL_MAX_IN
#define GL_MAX_IN 160               /* feature width (MCUNet backbone features) */
/* RAM budget of the Pico build: static RAM (.data + .bss in main SRAM, from the linker map)
 * may not exceed this; test_rp2040_emulator.py checks it. The 2 KiB main stack lives in
 * SCRATCH_Y, outside it. See docs/rp2040.md for the arithmetic. */
#define GL_RAM_BUDGET (136u * 1024u)

#endif
#ifndef GL_MAX_CLASSES
#define GL_MAX_CLASSES 10
/* RAM budget of the Pico build: static RAM (.data + .bss in main SRAM, from the linker map)
 * may not exceed this; test_rp2040_emulator.py checks it. The 2 KiB main stack lives in
 * SCRATCH_Y, outside it. See docs/rp2040.md for the arithmetic. */
#define GL_RAM_BUDGET (136u * 1024u)

#endif
#ifndef GL_MAX_BATCH
#define GL_MAX_BATCH 128            /* rows of the loaded minibatch */
/* RAM budget of the Pico build: static RAM (.data + .bss in main SRAM, from the linker map)
 * may not exceed this; test_rp2040_emulator.py checks it. The 2 KiB main stack lives in
 * SCRATCH_Y, outside it. See docs/rp2040.md for the arithmetic. */
#define GL_RAM_BUDGET (136u * 1024u)

#endif
#define GL_MAX_PARAMS (GL_MAX_CLASSES * GL_MAX_IN + GL_MAX_CLASSES) /* linear head: 1610 */
#define GL_MAX_MODEL_BYTES (GL_MAX_PARAMS * 4)                      /* fp32 payload */
#define GL_MAX_SENDERS 32           /* distinct senders merged in one gossip step */
#define GL_MAX_CHUNKS 64            /* chunks of one reassembled message */
#define GL_DEFAULT_MTU 512          /* micro-ROS serial transport frame limit */

/* Serial packets (before COBS): cmd, seq, data, crc32. Holds one LOAD of 3 x 160 features or
 * one wire frame at the default MTU. */
#define GL_SER_MAX_DATA 2048
#define GL_SER_MAX_PACKET (GL_SER_MAX_DATA + 3 + 4)

/* RAM budget of the Pico build: static RAM (.data + .bss in main SRAM, from the linker map)
 * may not exceed this; test_rp2040_emulator.py checks it. The 2 KiB main stack lives in
 * SCRATCH_Y, outside it. See docs/rp2040.md for the arithmetic. */
#define GL_RAM_BUDGET (136u * 1024u)

#endif
