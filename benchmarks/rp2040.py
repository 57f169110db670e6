"""RP2040 coprocessor figures for docs/rp2040.md, measured on the emulated RP2040 (rp2040js,
125 MHz simulated clock; the firmware times itself with time_us_32, so cycles = µs x 125):
cycles per training step / sample, per merge, per frame decode; soft-float vs fixed point;
flash and RAM from arm-none-eabi-size and the linker map; the trained head against the numpy
trainer and the host build; a mixed swarm against the all-host swarm. Prints; not a test.

    python benchmarks/rp2040.py --json docs/results/rp2040.json

Needs what test_rp2040_emulator.py needs (tools/rp2040_build.py builds the image).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _report import Report, allow_dirty_flag

ROOT = Path(__file__).resolve().parents[1]
MHZ = 125
_spec = importlib.util.spec_from_file_location("rp2040_build", ROOT / "tools" / "rp2040_build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
sys.modules["rp2040_build"] = build
_spec.loader.exec_module(build)


def memory(report: Report) -> None:
    size = (
        subprocess.run(
            ["arm-none-eabi-size", str(build.PICO_ELF)], capture_output=True, text=True, check=True
        )
        .stdout.splitlines()[1]
        .split()
    )
    text, data, bss = (int(v) for v in size[:3])
    map_text = build.PICO_MAP.read_text()

    def at(pattern: str) -> int:
        m = re.search(pattern, map_text, re.M)
        assert m, pattern
        return int(m.group(1), 16)

    end = at(r"^\s+0x([0-9a-f]+)\s+__end__ = \.")
    state = at(r"^ \.bss\.S\s+0x[0-9a-f]+\s+0x([0-9a-f]+) ")
    stack = at(r"^\s+0x([0-9a-f]+)\s+__StackTop = ") - at(r"^\s+0x([0-9a-f]+)\s+__StackBottom = ")
    cfg = (build.FIRMWARE / "core" / "gl_config.h").read_text()
    budget = int(re.search(r"GL_RAM_BUDGET \((\d+)u", cfg).group(1)) * 1024  # type: ignore[union-attr]
    report.add(
        what="memory", flash_text=text, data=data, bss=bss, static_ram=end - 0x20000000,
        firmware_state=state, stack=stack, ram_budget=budget, sram_total=264 * 1024,
        bin_bytes=build.PICO_BIN.stat().st_size,
    )  # fmt: skip


def cycles(report: Report, dev: Any) -> None:
    from gossip_learning import wire
    from gossip_learning.coprocessor.trainer import model_frames
    from gossip_learning.learner import HeadSpec, init_params
    from gossip_learning.messages import DType, Kind, Message

    spec = HeadSpec("linear", 160, 10)
    v = spec.version()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 160)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    for opt in ("sgd", "adam"):
        dev.configure(160, 10, opt, 1e-3, 1e-5, v, 1)
        for f in model_frames(init_params(spec, 0), 1, v, 512):
            dev.put_frame(f, merge=False)
        dev.load(X, y)
        for rows in (1, 32, 128):
            _, us = dev.train(rows)
            report.add(
                what="train_step", optimizer=opt, head="linear 160->10", rows=rows, us=us,
                cycles=us * MHZ, cycles_per_sample=round(us * MHZ / rows),
                ms_at_133mhz=round(us * MHZ / 133e3, 3),
            )  # fmt: skip
    own = init_params(spec, 1)
    for dtype, mtu in ((DType.F32, 512), (DType.F16, 512), (DType.I8, 512), (DType.F32, 2047)):
        dev.merge_discard()
        dev.merge_reset(100)
        msg = Message(kind=Kind.MODEL, sender=int(dtype) + 10 * (mtu > 512) + 2, samples=50,
                      model_version=v, model=own, dtype=dtype)  # fmt: skip
        frames = wire.encode_frames(msg, mtu - wire.OVERHEAD)
        decode, link = [], []
        for f in frames:
            decode.append(dev.put_frame(f, merge=True)[1])
            link.append(dev.status()["last_link_us"])  # that PUT_FRAME packet's link layer
        s = dev.status()
        report.add(
            what="merge", dtype=dtype.name.lower(), mtu=mtu, frames=len(frames),
            frame_decode_us=round(float(np.mean(decode[:-1] or decode)), 1),
            frame_link_us=round(float(np.mean(link[:-1] or link)), 1),
            frame_wire_ms=round(len(frames[0]) * 10 / 921_600 * 1e3, 2),
            add_us=s["last_merge_us"], add_cycles=s["last_merge_us"] * MHZ,
            total_us=int(sum(decode)), total_cycles=int(sum(decode)) * MHZ,
        )  # fmt: skip
    _, us = dev.merge_finalise()
    report.add(what="finalise", us=us, cycles=us * MHZ)
    names = ("float32 forward", "Q15 forward", "float64 accumulate", "float32 accumulate",
             "int64 Q24 accumulate")  # fmt: skip
    for which, name in enumerate(names):
        rows = 128 if which <= 1 else 1
        us, err = dev.bench(which, rows)
        report.add(what="softfloat_vs_fixed", kernel=name, rows=rows, us=us, cycles=us * MHZ,
                   max_abs_error=err)  # fmt: skip


def accuracy(report: Report, dev: Any, host: Any) -> None:
    from gossip_learning.coprocessor.trainer import CoprocessorTrainer
    from gossip_learning.learner import HeadSpec, init_params
    from gossip_learning.learning.numpy_trainer import NumpyTrainer
    from gossip_learning.training import training_seed

    spec = HeadSpec("linear", 160, 10)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(256, 160)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    p0 = init_params(spec, 2)
    for opt in ("adam", "sgd"):
        kw: dict[str, Any] = {"lr": 0.01, "weight_decay": 1e-5, "epochs": 2, "batch_size": 128,
                              "optimizer": opt}  # fmt: skip
        ref, ref_loss = NumpyTrainer(spec, **kw).train(p0, X, y, training_seed(1, 1, 0))
        mcu, loss = CoprocessorTrainer(dev, spec, X, y, 1, 0, **kw).train(p0, 1)
        hst, _ = CoprocessorTrainer(host, spec, X, y, 1, 0, **kw).train(p0, 1)
        report.add(
            what="accuracy", optimizer=opt, samples=256, epochs=2, batch=128,
            max_abs_mcu_vs_numpy=float(np.abs(mcu - ref).max()),
            max_abs_mcu_vs_host_build=float(np.abs(mcu - hst).max()),
            max_abs_update=float(np.abs(ref - p0).max()),
            loss_rel_diff=abs(loss - ref_loss) / ref_loss,
        )  # fmt: skip


def swarm(report: Report) -> None:
    sys.path.insert(0, str(ROOT / "test"))
    import test_rp2040_swarm as t

    ref_acc, ref_models = t._run(None)
    acc, models = t._run("emulator")
    report.add(
        what="swarm", robots=6, mcu_robots=len(t.MCU_ROBOTS), rounds=t.ROUNDS,
        acc_all_host=ref_acc[-1], acc_mixed=acc[-1],
        acc_curve_all_host=" ".join(f"{a:.4f}" for a in ref_acc),
        acc_curve_mixed=" ".join(f"{a:.4f}" for a in acc),
        max_abs_param_diff=float(np.abs(models - ref_models).max()),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=None, help="write the report here")
    allow_dirty_flag(ap)
    args = ap.parse_args(argv)
    from gossip_learning.coprocessor.client import Coprocessor
    from gossip_learning.coprocessor.links import HostLibraryLink, ProcessLink

    report = Report("rp2040", out=args.json, allow_dirty=args.allow_dirty)
    build.build_host()
    build.build_pico()
    memory(report)
    link = ProcessLink(build.emulator_argv())
    try:
        dev = Coprocessor(link, timeout=300.0)  # emulated: slower than the chip
        dev.hello()
        cycles(report, dev)
        accuracy(report, dev, Coprocessor(HostLibraryLink(build.HOST_LIB)))
    finally:
        link.close()
    swarm(report)
    for r in report.records:
        print(r)
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
