/* Compile-time limits of the firmware: every buffer is static and sized from these. HELLO
 * reports them (docs/rp2040-link.md); the host checks its settings against them. */
#ifndef GL_CONFIG_H
#define GL_CONFIG_H

#define GL_FW_VERSION 0x00020000u   /* 2.0.0 */
#define GL_PROTO_VERSION 2u         /* serial command protocol (docs/rp2040-link.md) */
#define GL_WIRE_VERSION 1u          /* docs/wire-format.md */

#ifndef GL_MAX_IN
#define GL_MAX_IN 160               /* feature width (MCUNet backbone features) */
#endif
#ifndef GL_MAX_CLASSES
#define GL_MAX_CLASSES 10
#endif
#ifndef GL_MAX_BATCH
#define GL_MAX_BATCH 128            /* rows of the loaded minibatch */
#endif
#define GL_MAX_PARAMS (GL_MAX_CLASSES * GL_MAX_IN + GL_MAX_CLASSES) /* linear head: 1610 */
#define GL_MAX_MODEL_BYTES (GL_MAX_PARAMS * 4)                      /* fp32 payload */
#define GL_MAX_SENDERS 32           /* distinct senders merged in one gossip step */
#define GL_MAX_CHUNKS 64            /* chunks of one reassembled message */
#define GL_DEFAULT_MTU 512          /* micro-ROS serial transport frame limit */

/* Time budget of one command: TRAIN runs at most this many optimiser steps per packet (one
 * 128-row Adam step is ~0.55 s at 125 MHz), so no command holds the chip for more than ~2.2 s;
 * the watchdog (GL_WATCHDOG_MS) is fed between steps and in the idle loop. */
#define GL_MAX_TRAIN_STEPS 4
#define GL_WATCHDOG_MS 2000
/* A packet whose bytes stop arriving for this long is dropped (counted as ser_timeout). */
#define GL_INTERBYTE_US 50000u

/* Input ranges (checked before any work): learning rate and weight decay of CONFIG, the
 * magnitude of every LOADed feature. Non-finite values are always refused. */
#define GL_MAX_LR 10.0
#define GL_MAX_WD 1.0
#define GL_MAX_ABS_FEATURE 1.0e6f

/* Serial packets (before COBS): cmd, seq, data, crc32. Holds one LOAD of 3 x 160 features or
 * one wire frame at the default MTU. */
#define GL_SER_MAX_DATA 2048
#define GL_SER_MAX_PACKET (GL_SER_MAX_DATA + 3 + 4)
/* Bytes the UART receive interrupt can hold while a command runs (Pico build). */
#define GL_RX_RING 2048

/* RAM budget of the Pico build: static RAM (.data + .bss in main SRAM, from the linker map)
 * may not exceed this; test_rp2040_emulator.py checks it. The 2 KiB main stack lives in
 * SCRATCH_Y, outside it. See docs/rp2040.md for the arithmetic. */
#define GL_RAM_BUDGET (136u * 1024u)

#endif
