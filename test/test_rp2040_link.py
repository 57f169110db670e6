"""The coprocessor link as a real wire (host build of the firmware core, ctypes): a late reply
is recognised by its sequence number and dropped, line noise before a packet costs nothing, a
packet cut off mid-way is dropped after the inter-byte timeout, every input is range-checked,
a model that went non-finite is never sent or merged, a reboot is seen through HELLO's session
token, and a robot whose chip fails trains and merges on its computer and re-attaches.
docs/rp2040-link.md is the protocol these tests hold."""

from __future__ import annotations

import struct
import time

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.aggregation import CumulativeFedAvg
from gossip_learning.coprocessor import protocol
from gossip_learning.coprocessor.client import Coprocessor, CoprocessorError, CoprocessorTimeout
from gossip_learning.coprocessor.links import HostLibraryLink, Link
from gossip_learning.coprocessor.trainer import (
    CoprocessorAccumulator,
    CoprocessorFallback,
    CoprocessorTrainer,
    get_model,
    model_frames,
    mtu_range,
    put_model,
)
from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.learning.numpy_trainer import NumpyTrainer
from gossip_learning.messages import DType, Kind, Message
from gossip_learning.training import LocalTrainer
from rp2040_support import host_library

SMALL = HeadSpec("linear", 16, 4)
SPEC = HeadSpec("linear", 160, 10)


class Wire:
    """The host build behind a line that can be held (replies arrive late) or cut (nothing
    gets through, as with a dead or rebooting chip). The firmware behind it is the real core."""

    def __init__(self, inner: HostLibraryLink) -> None:
        self.inner = inner
        self.hold = False  # replies stay on the line until released
        self.cut = False  # nothing reaches the chip, nothing comes back

    def write(self, data: bytes) -> None:
        if not self.cut:
            self.inner.write(data)

    def read(self, timeout: float) -> bytes:
        if self.hold or self.cut:
            time.sleep(min(timeout, 0.01))
            return b""
        return self.inner.read(timeout)

    def close(self) -> None:
        self.inner.close()


def _device(timeout: float = 0.3) -> tuple[Coprocessor, Wire]:
    line = Wire(HostLibraryLink(host_library()))
    link: Link = line
    return Coprocessor(link, timeout=timeout), line


def _configure(dev: Coprocessor, spec: HeadSpec = SMALL, **kw: float) -> None:
    args = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0} | kw
    dev.configure(spec.in_dim, spec.num_classes, str(args["optimizer"]), float(args["lr"]),
                  float(args["weight_decay"]), spec.version(), 3)  # fmt: skip


def test_a_late_reply_is_dropped_and_the_next_call_gets_its_own() -> None:
    dev, line = _device()
    line.hold = True
    with pytest.raises(CoprocessorTimeout, match="HELLO"):
        dev.hello()
    assert dev.lost
    line.hold = False  # HELLO's reply arrives now, late
    status = dev.status()  # before: this call read HELLO's reply and stayed one behind
    assert status["rx_packets"] == 2 and dev.dropped["stale"] == 1
    assert dev.hello().name == "gossip_learning-rp2040"


def test_line_noise_before_a_packet_costs_nothing() -> None:
    dev, _ = _device()
    for noise in (b"\x13\x37\x42", b"\xff" * 40, bytes(range(1, 200))):
        dev.send_raw(noise)  # no delimiter after it: the next packet's leading 0x00 ends it
        assert dev.hello().proto == protocol.PROTO_VERSION
    s = dev.status()
    assert s["rejects.cobs"] + s["rejects.serial_crc"] + s["rejects.serial_short"] == 3
    assert dev.dropped["link_cobs"] + dev.dropped["link_serial_crc"] >= 1  # their reports


def test_a_packet_cut_off_mid_way_is_dropped_after_the_inter_byte_timeout() -> None:
    dev, _ = _device()
    info = dev.hello()
    dev.send_raw(protocol.packet(int(protocol.Cmd.STATUS), 9)[:-3])  # no end: the line stops
    time.sleep(info.interbyte_us / 1e6 + 0.02)
    cmd, seq, status, _ = dev.read_reply()  # the idle loop's check dropped and reported it
    assert (cmd, seq, status) == (protocol.LINK_ERROR, 0, protocol.STATUS["ser_timeout"])
    assert dev.status()["rejects.ser_timeout"] == 1


def test_hello_reports_the_limits_and_a_reboot_is_seen_and_recovered() -> None:
    dev, line = _device()
    info = dev.hello()
    assert (info.max_chunks, info.max_train_steps, info.max_senders) == (64, 4, 32)
    assert info.max_packet_data == 2048 and info.ram_budget == 136 * 1024
    assert not info.configured and info.session == 0
    _configure(dev)
    assert dev.hello().configured and dev.hello().session == dev.session != 0
    assert not dev.rebooted()
    line.inner.lib.gl_host_reset()  # the chip resets: its configuration is gone
    assert dev.rebooted()
    with pytest.raises(CoprocessorError, match="state"):
        dev.train(1)
    assert dev.recover() is True  # configured again, with a new session token
    assert not dev.rebooted() and dev.hello().configured


def test_inputs_out_of_range_are_refused_before_any_work() -> None:
    dev, _ = _device()
    for lr, wd in ((1e30, 0.0), (float("nan"), 0.0), (0.1, 2.0), (0.1, float("inf"))):
        with pytest.raises(CoprocessorError, match="range"):
            _configure(dev, lr=lr, weight_decay=wd)
    _configure(dev)
    X = np.ones((2, 16), np.float32)
    for bad, reason in ((1e30, "range"), (np.inf, "nonfinite"), (np.nan, "nonfinite")):
        X[1, 3] = bad
        with pytest.raises(CoprocessorError, match=reason):
            dev.load(X, np.array([0, 1]))
    X[1, 3] = 1e6  # the largest feature magnitude taken
    dev.load(X, np.array([0, 1]))
    info = dev.hello()
    with pytest.raises(CoprocessorError, match="args"):  # one command's time budget
        dev.train(2, steps=info.max_train_steps + 1)
    dev.train(2, steps=info.max_train_steps)
    with pytest.raises(ValueError, match="features"):
        CoprocessorTrainer(dev, SMALL, np.full((4, 16), 2e6, np.float32), np.zeros(4), 0, 3)


def test_a_model_that_went_non_finite_is_never_sent_or_merged() -> None:
    dev, _ = _device()
    # weight decay 1 at lr 10: every SGD step multiplies the weights by -9 (overflow in ~40)
    _configure(dev, lr=10.0, weight_decay=1.0)
    put_model(dev, model_frames(np.full(SMALL.num_params(), 0.1, np.float32), 3,
                                SMALL.version(), 512), merge=False)  # fmt: skip
    dev.load(np.zeros((4, 16), np.float32), np.array([0, 1, 2, 3]))
    for _ in range(20):
        try:
            dev.train(4, steps=4)
        except CoprocessorError as exc:
            assert exc.reason == "diverged"
            break
    else:
        pytest.fail("the weights never overflowed")
    for refused in (lambda: dev.get_frame("f32", 462), lambda: dev.merge_reset(10),
                    lambda: dev.train(4)):  # fmt: skip
        with pytest.raises(CoprocessorError, match="diverged"):
            refused()
    good = init_params(SMALL, 2)
    put_model(dev, model_frames(good, 3, SMALL.version(), 512), merge=False)  # replaces it
    np.testing.assert_array_equal(get_model(dev, 3, 512), good)


def test_bench_never_overwrites_a_half_received_message() -> None:
    dev, _ = _device()
    _configure(dev, spec=SPEC)
    frames = model_frames(init_params(SPEC, 1), 7, SPEC.version(), 512)
    assert dev.put_frame(frames[0], merge=False)[0] is False  # a partial message is pending
    with pytest.raises(CoprocessorError, match="state"):
        dev.bench(1, 4)
    for f in frames[1:]:
        dev.put_frame(f, merge=False)
    dev.bench(1, 4)


@pytest.mark.parametrize("peak", [1e-37, 1e-39, 0.0])
def test_int8_frames_of_a_tiny_model_equal_python_and_are_accepted(peak: float) -> None:
    dev, _ = _device()
    _configure(dev)
    model = np.zeros(SMALL.num_params(), np.float32)
    model[::3] = np.float32(peak)
    put_model(dev, model_frames(model, 3, SMALL.version(), 512), merge=False)
    chip = dev.get_frame("int8", 462, round_no=0)
    msg = Message(kind=Kind.MODEL, sender=3, model=model, dtype=DType.I8,
                  model_version=SMALL.version())  # fmt: skip
    assert chip == wire.encode(msg)  # the same bytes on both sides (scale 1 when not normal)
    assert wire.parse_frame(chip).scale == 1.0
    wire.decode(chip)  # and a peer accepts it


def test_the_chip_never_sends_an_fp16_frame_that_overflows() -> None:
    dev, _ = _device()
    _configure(dev)
    model = init_params(SMALL, 3)
    model[5] = 65520.0  # rounds to Inf in fp16, which every receiver refuses
    put_model(dev, model_frames(model, 3, SMALL.version(), 512), merge=False)
    with pytest.raises(CoprocessorError, match="range"):
        dev.get_frame("f16", 462)
    wire.decode(dev.get_frame("f32", 462))  # fp32 carries it
    model[5] = 65519.0  # rounds to 65504: finite
    put_model(dev, model_frames(model, 3, SMALL.version(), 512), merge=False)
    msg = Message(kind=Kind.MODEL, sender=3, model=model, dtype=DType.F16,
                  model_version=SMALL.version())  # fmt: skip
    assert dev.get_frame("f16", 462, round_no=0) == wire.encode(msg)


def test_mtu_bounds_follow_the_chunk_limit() -> None:
    assert mtu_range(SPEC.num_params()) == (151, 2047)
    dev, _ = _device()
    dev.hello()
    X, y = np.zeros((4, 160), np.float32), np.zeros(4, np.int64)
    with pytest.raises(ValueError, match=r"coprocessor_mtu 150 out of range.*151\.\.2047"):
        CoprocessorTrainer(dev, SPEC, X, y, 0, 3, mtu=150)
    CoprocessorTrainer(dev, SPEC, X, y, 0, 3, mtu=151)  # 64 chunks: the most it reassembles
    p = init_params(SPEC, 4)
    put_model(dev, model_frames(p, 3, SPEC.version(), 151), merge=False)
    np.testing.assert_array_equal(get_model(dev, 3, 151), p)


def test_defence_applies_on_the_coprocessor_merge_path() -> None:
    rng = np.random.default_rng(8)
    own = rng.normal(0, 0.1, SMALL.num_params()).astype(np.float32)
    near = (own + rng.normal(0, 0.01, own.size)).astype(np.float32)
    far = (own + rng.normal(0, 5.0, own.size)).astype(np.float32)
    ref = CumulativeFedAvg(SMALL.num_params(), max_rms=1.0, clip_ratio=0.5)
    dev, _ = _device()
    _configure(dev)
    acc = CoprocessorAccumulator(dev, SMALL, 3, max_rms=1.0, clip_ratio=0.5)
    for a in (ref, acc):
        a.reset(3, own, 10.0)
        assert not a.out_of_bound(near) and a.out_of_bound(far * 10)  # max_rms
        assert a.add(1, near, 5.0) and a.add(2, far, 5.0)  # `far` is clipped first
    out_ref, out = own.copy(), own.copy()
    ref.finalise(out_ref)
    acc.finalise(out)
    assert ref.clipped == 1 and acc.host.clipped == 1
    unclipped = (10 * own.astype(np.float64) + 5 * near + 5 * far) / 20
    assert np.abs(unclipped - out_ref).max() > 0.1  # clipping mattered
    # the chip merges the clipped model in float32: equal up to that rounding
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-6)


def test_a_failing_chip_trains_the_round_on_the_computer_and_rejoins() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 16)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    kw = {"lr": 0.05, "weight_decay": 0.0, "epochs": 1, "batch_size": 16, "optimizer": "sgd"}
    dev, line = _device()
    chip = CoprocessorTrainer(dev, SMALL, X, y, 0, 3, **kw)  # type: ignore[arg-type]
    host = LocalTrainer(NumpyTrainer(SMALL, **kw), X, y, 0, 3)  # type: ignore[arg-type]
    reports: list[str] = []
    trainer = CoprocessorFallback(chip, host, reports.append)
    p0 = init_params(SMALL, 1)
    on_chip, _ = trainer.train(p0, 1)
    np.testing.assert_allclose(on_chip, host.train(p0, 1)[0], atol=1e-6)
    line.cut = True  # the chip is gone mid-run
    got, _ = trainer.train(p0, 2)
    np.testing.assert_array_equal(got, host.train(p0, 2)[0])  # this round on the computer
    assert trainer.faults == 1 and "round 2 trains on the computer" in reports[-1]
    got, _ = trainer.train(p0, 3)  # still gone: a short HELLO, then the computer again
    assert trainer.faults == 2 and "still unreachable" in reports[-1]
    line.inner.lib.gl_host_reset()  # it comes back, rebooted
    line.cut = False
    got, _ = trainer.train(p0, 4)
    assert "back in round 4 after a reboot" in reports[-1] and trainer.faults == 2
    np.testing.assert_allclose(got, host.train(p0, 4)[0], atol=1e-6)  # on the chip again


def test_a_merge_step_whose_chip_fails_continues_on_the_computer() -> None:
    rng = np.random.default_rng(10)
    own, a, b = (rng.normal(size=SMALL.num_params()).astype(np.float32) for _ in range(3))
    dev, line = _device()
    _configure(dev)
    reports: list[str] = []
    acc = CoprocessorAccumulator(dev, SMALL, 3, report=reports.append)
    acc.reset(3, own, 10.0)
    assert acc.add(1, a, 5.0)
    line.cut = True
    assert acc.add(2, b, 5.0)  # the chip fails here: the step goes on from the own model
    out = own.copy()
    acc.finalise(out)
    ref = CumulativeFedAvg(SMALL.num_params())
    ref.reset(3, own, 10.0)
    ref.add(2, b, 5.0)
    expected = own.copy()
    ref.finalise(expected)
    np.testing.assert_array_equal(out, expected)
    assert acc.mixing_row() == {3: pytest.approx(2 / 3), 2: pytest.approx(1 / 3)}
    assert len(reports) == 1 and "1 model(s) merged on the chip in this one lost" in reports[0]
    acc.reset(3, own, 10.0)  # still gone: on the computer, reported once per outage
    acc.discard()
    assert len(reports) == 1
    line.cut = False
    acc.reset(3, own, 10.0)  # back: merging on the chip again
    assert "merging on it again" in reports[-1] and not acc.on_host
    assert acc.add(1, a, 5.0)
    acc.finalise(out)


def test_a_sequence_number_wraps_without_confusion() -> None:
    dev, _ = _device()
    for _ in range(300):
        dev.call(protocol.Cmd.STATUS)
    assert dev.dropped == {} and struct.unpack_from("<I", dev.call(protocol.Cmd.STATUS), 4)[0]
