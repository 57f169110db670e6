// Runs a Pico SDK image (.bin linked at 0x10000000) on the rp2040js emulator, with UART0
// bridged to this process: stdin bytes go to the MCU's RX at the line rate (never faster than
// its 32-byte FIFO takes them), the MCU's TX bytes come out on stdout.
//   node run.mjs --bin firmware.bin --bootrom bootrom-b1.bin [--baud 921600]
// The emulated clock is 125 MHz; the firmware reads simulated time (time_us_32) so its own
// timings are M0+ timings. While the firmware sleeps (WFI) and no input is waiting, simulated
// time follows real time. It exits when stdin closes, and with code 3 on a watchdog reset.
import { readFileSync } from 'node:fs';
import { Simulator } from 'rp2040js';

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) {
    process.stderr.write(`usage: node run.mjs --bin IMAGE.bin --bootrom BOOTROM.bin\n`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const image = readFileSync(arg('--bin'));
const rom = readFileSync(arg('--bootrom'));
const sim = new Simulator();
const mcu = sim.rp2040;
mcu.loadBootrom(new Uint32Array(rom.buffer, rom.byteOffset, rom.length / 4));
mcu.flash.set(image, 0);
const uart = mcu.uart[0];
// stdout is the serial line: the emulator's own messages (info: SEV, ...) go to stderr, and
// only warnings and errors at that.
const quiet = () => {};
// UART IFLS (0x34) and DMACR (0x48) are not modelled by rp2040js; the SDK's uart_init sets them.
const known = /Unimplemented peripheral (read from|write to) 0x(34|48)\b/;
const toStderr = (tag) => (component, message) => {
  if (!known.test(message)) process.stderr.write(`${tag} ${component}: ${message}\n`);
};
mcu.logger = { debug: quiet, info: quiet, warn: toStderr('warn'), error: toStderr('error') };

let out = [];
uart.onByte = (b) => out.push(b);

// A watchdog reset: this runner treats it as a power cycle and exits (code 3) so that whoever
// started it (tools/rp2040_pty.py restarts it) sees the reboot.
mcu.findPeripheral(0x40058000).onWatchdogTrigger = () => {
  process.stderr.write('rp2040: watchdog reset\n');
  flush();
  process.exit(3);
};

const queue = [];
let qhead = 0;
let closed = false;
let wake = null;
process.stdin.on('data', (chunk) => {
  for (const b of chunk) queue.push(b);
  if (wake) { const w = wake; wake = null; w(); }
});
process.stdin.on('end', () => {
  closed = true;
  if (wake) { const w = wake; wake = null; w(); }
});

const cycleNanos = 1e9 / 125000000;
const core = mcu.core;
const clock = sim.clock;
core.PC = 0x10000000;

// Bytes reach the RX FIFO at the line rate (8N1: 10 bits a byte at --baud, default 921600),
// as from a real serial line; a byte that finds the 32-byte FIFO full is lost (an overrun, as
// on the chip: firmware that does not drain the FIFO while it computes loses bytes).
const baudArg = process.argv.indexOf('--baud');
const baud = baudArg > 0 ? Number(process.argv[baudArg + 1]) : 921600;
const byteNanos = 10e9 / baud;
let nextByte = 0;
let overruns = 0;
process.on('exit', () => { if (overruns) process.stderr.write(`rp2040: ${overruns} bytes lost to UART overrun\n`); });
function feed() {
  const now = clock.nanos;
  if (nextByte < now - byteNanos) nextByte = now - byteNanos; // an idle line: no backlog
  while (qhead < queue.length && nextByte <= now) {
    if (uart.rxFIFO.full) overruns++;
    else uart.feedByte(queue[qhead]);
    qhead++;
    nextByte += byteNanos;
  }
}

// Run up to n instructions; stop early (returning true) when the core sleeps (WFI) with no
// input waiting: then simulated time follows real time (idle()).
function slice(n) {
  for (let i = 0; i < n; i++) {
    if ((i & 63) === 0) feed();
    if (core.waiting && core.checkForInterrupts()) core.waiting = false; // a pending IRQ
    if (core.waiting) {
      if (qhead >= queue.length) return true;
      const dt = clock.nanosToNextAlarm;
      // until the next byte on the line (its IRQ wakes the core) or the next alarm
      const toByte = Math.max(cycleNanos, nextByte - clock.nanos);
      clock.tick(dt > 0 ? Math.min(dt, toByte) : toByte);
      feed();
    } else {
      clock.tick(core.executeInstruction() * cycleNanos);
    }
  }
  if (qhead > 65536) { queue.splice(0, qhead); qhead = 0; }
  return false;
}

// The firmware sleeps until its next timer alarm or a byte: wait that long in real time (or
// until stdin has data) and advance the simulated clock by the real time that passed, so
// timeouts, the 10 ms tick and the watchdog see the same idle time as on a board.
async function idle() {
  const dt = clock.nanosToNextAlarm;
  const wait = dt > 0 ? dt : 10e6;
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => {
    const timer = setTimeout(() => { wake = null; resolve(); }, wait / 1e6);
    wake = () => { clearTimeout(timer); resolve(); };
  });
  const elapsed = Number(process.hrtime.bigint() - t0);
  clock.tick(Math.max(cycleNanos, Math.min(elapsed, wait)));
}

function flush() {
  if (out.length) {
    process.stdout.write(Buffer.from(out));
    out = [];
  }
}

async function main() {
  for (;;) {
    const sleeping = slice(20000);
    flush();
    if (sleeping) {
      if (closed) break;
      await idle();
    }
  }
  flush();
}

main();
