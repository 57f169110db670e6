/* Why a frame or packet was rejected. The firmware counts each reason (STATUS command);
 * src/gossip_learning/coprocessor/protocol.py mirrors this list. Append only. */
#ifndef GL_ERRORS_H
#define GL_ERRORS_H
enum gl_status {
    GL_OK = 0,
    /* wire frames (docs/wire-format.md, "Rules a receiver applies") */
    GL_E_SHORT = 1,         /* shorter than the 50-byte envelope */
    GL_E_MAGIC = 2,         /* not "GL" */
    GL_E_VERSION = 3,       /* wire version != 1 */
    GL_E_LENGTH = 4,        /* length disagrees with payload_len */
    GL_E_CRC = 5,           /* frame CRC-32 mismatch */
    GL_E_CODE = 6,          /* unknown kind, layer or dtype */
    GL_E_CHUNK = 7,         /* bad chunk numbering */
    GL_E_WIDTH = 8,         /* model payload not a whole number of elements */
    GL_E_SCALE = 9,         /* int8 scale not finite or <= 0 */
    GL_E_NONFINITE = 10,    /* non-finite numbers */
    GL_E_MODEL_VERSION = 11,/* model version differs from the configured head */
    GL_E_MODEL_SIZE = 12,   /* parameter count differs from the configured head */
    GL_E_DUPLICATE = 13,    /* sender already merged this step */
    GL_E_REASM = 14,        /* chunks of one message disagree (a header field or the size) */
    GL_E_EVICTED = 15,      /* a partial message dropped for a new one (one buffer) */
    GL_E_NOT_MODEL = 16,    /* kind carries no model (or beacon payload malformed) */
    GL_E_TOO_BIG = 17,      /* does not fit the buffer */
    /* serial link */
    GL_E_COBS = 18,         /* malformed COBS */
    GL_E_SER_CRC = 19,      /* packet CRC mismatch */
    GL_E_SER_SHORT = 20,    /* packet shorter than cmd + seq + crc */
    GL_E_SER_OVERFLOW = 21, /* packet longer than the receive buffer */
    GL_E_COMMAND = 22,      /* unknown command */
    GL_E_ARGS = 23,         /* arguments malformed or out of range */
    GL_E_STATE = 24,        /* command not valid now (e.g. merge before reset, not configured) */
    GL_E_SENDERS = 25,      /* too many senders in one step */
    GL_E_WEIGHT = 26,       /* sample weight 0 */
    GL_E_SER_TIMEOUT = 27,  /* a packet's bytes stopped arriving (GL_INTERBYTE_US) */
    GL_E_RANGE = 28,        /* a number out of range (lr, weight decay, feature, fp16 overflow) */
    GL_E_FLAGS = 29,        /* reserved wire flag bits set */
    GL_E_DIVERGED = 30,     /* a training step or merge made the model non-finite */
    GL_N_STATUS = 31
};
#endif
