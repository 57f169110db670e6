// Runs a Pico SDK image (.bin linked at 0x10000000) on the rp2040js emulator, with UART0
// bridged to this process: stdin bytes go to the MCU's RX (never faster than its 32-byte FIFO
// takes them), the MCU's TX bytes come out on stdout.
//   node run.mjs --bin firmware.bin --bootrom bootrom-b1.bin
// The emulated clock is 125 MHz; the firmware reads simulated time (time_us_32) so its own
// timings are M0+ timings. While the firmware polls an empty UART and no input is waiting,
// the emulator sleeps until stdin has data. It exits when stdin closes.
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

let out = [];
uart.onByte = (b) => out.push(b);

// Idle detection: the firmware keeps reading UARTFR (offset 0x18) with the RX FIFO empty and
// touches no data register in between (while it transmits, every FR read is followed by a write
// to UARTDR, offset 0x00, which resets the count).
let emptyPolls = 0;
const read = uart.readUint32.bind(uart);
const write = uart.writeUint32.bind(uart);
uart.readUint32 = (offset) => {
  if (offset === 0x18 && uart.rxFIFO.empty) emptyPolls++;
  else if (offset === 0) emptyPolls = 0;
  return read(offset);
};
uart.writeUint32 = (offset, value) => {
  if (offset === 0) emptyPolls = 0;
  write(offset, value);
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

function slice(n) {
  for (let i = 0; i < n; i++) {
    if (core.waiting) {
      const dt = clock.nanosToNextAlarm;
      clock.tick(dt > 0 ? dt : cycleNanos);
    } else {
      clock.tick(core.executeInstruction() * cycleNanos);
    }
    if ((i & 63) === 0) {
      while (qhead < queue.length && !uart.rxFIFO.full) uart.feedByte(queue[qhead++]);
    }
  }
  if (qhead > 65536) { queue.splice(0, qhead); qhead = 0; }
}

function flush() {
  if (out.length) {
    process.stdout.write(Buffer.from(out));
    out = [];
  }
}

async function main() {
  for (;;) {
    slice(20000);
    flush();
    if (qhead >= queue.length && emptyPolls > 1000) {
      if (closed) break;
      await new Promise((resolve) => { wake = resolve; });
    }
  }
  flush();
}

main();
