"""The agent's ports on a coprocessor: training (:class:`CoprocessorTrainer`) and cumulative
FedAvg (:class:`CoprocessorAccumulator`) run on the MCU; models cross the link as wire-format
frames chunked to the link MTU (default: micro-ROS's 512-byte serial transport).

Training matches :class:`~gossip_learning.learning.numpy_trainer.NumpyTrainer` on the same data
and seed: the host draws the minibatch order (:func:`batch_order`, the seed of
:func:`training_seed`), streams each minibatch to the MCU and asks for one optimiser step; the
MCU holds the head and the optimiser state. Nothing random runs on the MCU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gossip_learning import wire
from gossip_learning.aggregation import CumulativeFedAvg, close_for_result, is_new_sender
from gossip_learning.coprocessor.client import Coprocessor, CoprocessorError, Hello
from gossip_learning.coprocessor.protocol import MAX_CHUNKS, ProtocolError
from gossip_learning.learner import HeadSpec
from gossip_learning.learning.batching import batch_order
from gossip_learning.messages import Kind, Message
from gossip_learning.training import Done, RoundTrainer, training_seed

DEFAULT_MTU = 512  # bytes of one wire frame on the link (micro-ROS serial transport)
#: What a lost, rebooted or confused coprocessor raises (CoprocessorTimeout is a TimeoutError,
#: an OSError; a model that did not come back whole is a RuntimeError).
LINK_FAULTS: tuple[type[Exception], ...] = (
    CoprocessorError, ProtocolError, OSError, RuntimeError,
)  # fmt: skip


def mtu_range(
    num_params: int, max_chunks: int = MAX_CHUNKS, max_data: int = 2048
) -> tuple[int, int]:
    """Link MTUs (wire frame bytes) the firmware takes for a head of ``num_params``: an fp32
    model must fit ``max_chunks`` chunks, and a PUT_FRAME packet (mode byte + frame) its
    ``max_data`` bytes."""
    low = wire.OVERHEAD + -(-4 * num_params // max_chunks)
    return max(low, wire.OVERHEAD + 1), max_data - 1


def check_mtu(info: Hello, spec: HeadSpec, mtu: int) -> None:
    """Raise ValueError naming ``coprocessor_mtu`` unless the firmware can take ``mtu``."""
    low, high = mtu_range(spec.num_params(), info.max_chunks, info.max_packet_data)
    if not low <= mtu <= high:
        raise ValueError(
            f"coprocessor_mtu {mtu} out of range for a {spec.num_params()}-parameter head: "
            f"{low}..{high} (the firmware reassembles at most {info.max_chunks} chunks)"
        )


def check_head(client: Coprocessor, spec: HeadSpec) -> None:
    """Raise ValueError unless the firmware can hold ``spec`` (a linear head within limits)."""
    info = client.hello_info or client.hello()
    if spec.kind != "linear":
        raise ValueError(
            f"the coprocessor trains linear heads only (RAM: see docs/rp2040.md), got {spec.kind}"
        )
    if spec.in_dim > info.max_in or spec.num_classes > info.max_classes:
        raise ValueError(
            f"head {spec.in_dim}->{spec.num_classes} exceeds the firmware's "
            f"{info.max_in}->{info.max_classes}"
        )


def put_model(client: Coprocessor, frames: list[bytes], merge: bool) -> None:
    """Give the MCU a model as wire frames; the last one must complete it."""
    done = False
    for f in frames:
        done, _ = client.put_frame(f, merge)
    if not done:
        raise RuntimeError("the coprocessor did not complete the model from its frames")


def get_model(client: Coprocessor, robot_id: int, mtu: int) -> np.ndarray:
    """The MCU's head as float32 params (fp32 frames, reassembled by :mod:`wire`)."""
    asm = wire.Reassembler(max_pending=1)
    msg = None
    for f in client.get_frames("f32", mtu - wire.OVERHEAD, round_no=0):
        msg = asm.feed(f)
    if msg is None or msg.model is None or msg.sender != robot_id:
        raise RuntimeError("the coprocessor's model frames did not reassemble")
    return msg.model


def model_frames(
    params: np.ndarray, sender: int, version: int, mtu: int, samples: int = 0
) -> list[bytes]:
    """``params`` as fp32 MODEL frames of at most ``mtu`` bytes."""
    msg = Message(
        kind=Kind.MODEL, sender=sender, samples=samples, model_version=version,
        model=np.asarray(params, dtype=np.float32),
    )  # fmt: skip
    return wire.encode_frames(msg, mtu - wire.OVERHEAD)


class CoprocessorTrainer:
    """Robot ``robot_id``'s Trainer port on a coprocessor, training on its own ``(X, y)``.

    Same hyper-parameters and minibatch order as the numpy/torch engines (``training_seed``,
    ``batch_order``); a fresh optimiser every round. ``start`` runs the job at once; wrap it in
    :class:`~gossip_learning.training.ThreadedTrainer` to keep a ROS executor free.
    """

    def __init__(
        self,
        client: Coprocessor,
        spec: HeadSpec,
        X: np.ndarray,
        y: np.ndarray,
        seed: int,
        robot_id: int,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        epochs: int = 2,
        batch_size: int = 128,
        optimizer: str = "adam",
        mtu: int = DEFAULT_MTU,
    ) -> None:
        check_head(client, spec)
        info = client.hello_info
        assert info is not None
        if batch_size > info.max_batch:
            raise ValueError(f"batch size {batch_size} exceeds the firmware's {info.max_batch}")
        check_mtu(info, spec, mtu)
        if not (0 < lr <= info.max_lr and 0 <= weight_decay <= info.max_weight_decay):
            raise ValueError(
                f"lr {lr} / weight_decay {weight_decay} outside the firmware's "
                f"(0, {info.max_lr}] / [0, {info.max_weight_decay}]"
            )
        self.client, self.spec = client, spec
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.int64)
        peak = float(np.max(np.abs(self.X))) if self.X.size else 0.0
        if not (np.isfinite(self.X).all() and peak <= info.max_abs_feature):
            raise ValueError(
                f"features must be finite and within ±{info.max_abs_feature:g} for the "
                f"coprocessor (largest |x| {peak:g})"
            )
        self.seed, self.robot_id = seed, robot_id
        self.epochs, self.batch_size, self.mtu = int(epochs), int(batch_size), int(mtu)
        self.version = spec.version()
        self._opt = (optimizer, lr, weight_decay)
        self.configure()
        self.last_train_us: list[int] = []

    def configure(self) -> None:
        """Give the chip this robot's head shape and optimiser (a new session token)."""
        optimizer, lr, wd = self._opt
        self.client.configure(
            self.spec.in_dim, self.spec.num_classes, optimizer, lr, wd, self.version,
            self.robot_id,
        )  # fmt: skip

    def reattach(self) -> bool:
        """After a link fault: :meth:`Coprocessor.recover` (configured again if it rebooted)."""
        return self.client.recover()

    def train(self, params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]:
        """``(params, round) -> (new params, mean loss of the last epoch)`` on the MCU."""
        n = len(self.y)
        if n == 0 or self.epochs == 0:
            return np.array(params, dtype=np.float32, copy=True), math.nan
        with self.client.lock:
            return self._train(params, round_no)

    def _train(self, params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]:
        n = len(self.y)
        c = self.client
        put_model(c, model_frames(params, self.robot_id, self.version, self.mtu), merge=False)
        c.reset_optimizer()
        order = batch_order(training_seed(self.seed, round_no, self.robot_id), n, self.epochs)
        loss_sum = 0.0
        self.last_train_us = []
        for e, perm in enumerate(order):
            for s in range(0, n, self.batch_size):
                idx = perm[s : s + self.batch_size]
                c.load(self.X[idx], self.y[idx])
                loss, us = c.train(len(idx))
                self.last_train_us.append(us)
                if e == self.epochs - 1:
                    loss_sum += float(np.float32(loss)) * len(idx)
        return get_model(c, self.robot_id, self.mtu), loss_sum / n

    def start(self, params: np.ndarray, round_no: int) -> Done:
        return Done(*self.train(params, round_no))


class CoprocessorFallback:
    """A round trainer that trains on the coprocessor while it answers and on the computer
    (``host``, e.g. a :class:`~gossip_learning.training.LocalTrainer` with the same seed and
    data) in a round where the link fails: the fault is passed to ``report``, and before the
    next round the chip is re-attached (configured again if it rebooted)."""

    def __init__(
        self, chip: CoprocessorTrainer, host: RoundTrainer, report: Callable[[str], None]
    ) -> None:
        self.chip, self.host, self.report = chip, host, report
        self.lost = False
        self.faults = 0  # rounds trained on the computer because the chip failed

    def train(self, params: np.ndarray, round_no: int) -> tuple[np.ndarray, float]:
        self.lost = self.lost or self.chip.client.lost  # the accumulator may have seen it go
        if self.lost:
            try:
                rebooted = self.chip.reattach()
            except LINK_FAULTS as exc:
                return self._on_host(params, round_no, f"still unreachable ({exc})")
            self.lost = False
            self.report(
                f"coprocessor back in round {round_no}"
                + (" after a reboot: configured again" if rebooted else "")
            )
        try:
            return self.chip.train(params, round_no)
        except LINK_FAULTS as exc:
            self.lost = True
            return self._on_host(params, round_no, f"failed: {exc}")

    def _on_host(self, params: np.ndarray, round_no: int, why: str) -> tuple[np.ndarray, float]:
        self.faults += 1
        self.report(f"coprocessor {why}; round {round_no} trains on the computer")
        return self.host.train(params, round_no)

    def start(self, params: np.ndarray, round_no: int) -> Done:
        return Done(*self.train(params, round_no))


class CoprocessorAccumulator:
    """Cumulative FedAvg on the coprocessor, with :class:`~gossip_learning.aggregation.
    CumulativeFedAvg`'s interface (a ``MergeWindow`` accumulator): the MCU holds S (float64) and
    N; the host keeps only the senders' weights (for ``mixing_row``). Results equal the Python
    accumulator bit for bit (same float64 arithmetic); weights must be whole sample counts.
    The MCU's head is overwritten by ``reset`` (the robot's own model).

    The robot's defence applies before a model is forwarded: with ``max_rms`` an over-bound
    model is refused (:meth:`out_of_bound`), with ``clip_ratio`` it is clipped on the host (a
    :class:`CumulativeFedAvg` of the same settings does both) and the clipped model goes to the
    chip. With ``report`` a link fault does not raise: the step continues on that host
    accumulator from the robot's own model (what the chip had merged in the step is lost) and
    the fault is reported."""

    def __init__(
        self,
        client: Coprocessor,
        spec: HeadSpec,
        robot_id: int,
        mtu: int = DEFAULT_MTU,
        *,
        max_rms: float = 0.0,
        clip_ratio: float = 0.0,
        report: Callable[[str], None] | None = None,
    ) -> None:
        check_head(client, spec)
        assert client.hello_info is not None
        check_mtu(client.hello_info, spec, mtu)
        self.client, self.spec, self.robot_id, self.mtu = client, spec, robot_id, mtu
        self.size = spec.num_params()
        self.version = spec.version()
        self.active = False
        self._senders: dict[int, float] = {}
        self.clip_ratio = clip_ratio
        self.host = CumulativeFedAvg(self.size, max_rms, clip_ratio)  # bound, clip, fallback
        self.report = report
        self.on_host = False  # this step fell back to the host accumulator
        self.faults = 0
        self._quiet = False  # this outage was reported

    @property
    def nbytes(self) -> int:
        """Bytes the MCU's accumulator holds for the sum (float64 per parameter)."""
        return 8 * self.size

    @staticmethod
    def _count(weight: float) -> int:
        if weight <= 0 or weight != int(weight) or weight > 0xFFFFFFFF:
            raise ValueError(f"weight must be a whole sample count > 0, got {weight}")
        return int(weight)

    def reset(self, owner: int, own: np.ndarray, weight: float) -> None:
        if own.shape != (self.size,):
            raise ValueError(f"own model has shape {own.shape}, expected ({self.size},)")
        n = self._count(weight)
        self.host.reset(owner, own, weight)
        self.on_host = False
        self._senders = {owner: float(weight)}
        self.active = True
        frames = model_frames(own, owner, self.version, self.mtu)
        try:
            with self.client.lock:
                if self.client.lost:  # a short HELLO first: no long wait on a missing chip
                    rebooted = self.client.recover()
                    if self.report is not None:
                        self.report(
                            "coprocessor back: merging on it again"
                            + (" (it had rebooted: configured again)" if rebooted else "")
                        )
                put_model(self.client, frames, merge=False)
                self.client.merge_reset(n)
            self._quiet = False
        except LINK_FAULTS as exc:
            self._fault("opening a merge step", exc)

    def _fault(self, doing: str, exc: Exception) -> None:
        """Continue the step on the host accumulator (or raise without ``report``)."""
        if self.report is None:
            raise exc
        self.client.lost = True
        self.faults += 1
        lost = len(self._senders) - 1
        self.on_host = True
        if not self._quiet or lost:  # once per outage, not at every step while it lasts
            self._quiet = True
            self.report(
                f"coprocessor failed {doing} ({exc}); merge steps continue on the computer"
                + (f", {lost} model(s) merged on the chip in this one lost" if lost else "")
            )
        owner = next(iter(self._senders))
        self._senders = {owner: self._senders[owner]}

    def add(self, sender: int, model: np.ndarray, weight: float) -> bool:
        if not is_new_sender(self, sender, model, weight):
            return False
        n = self._count(weight)
        if self.on_host:
            self.host.add(sender, model, weight)
            self._senders[sender] = float(weight)
            return True
        forward = self.host.as_merged(model).astype(np.float32) if self.clip_ratio else model
        try:
            frames = model_frames(forward, sender, self.version, self.mtu, n)
            put_model(self.client, frames, merge=True)
        except LINK_FAULTS as exc:
            self._fault(f"merging robot {sender}'s model", exc)
            return self.add(sender, model, weight)
        self._senders[sender] = float(weight)
        return True

    @property
    def merged(self) -> int:
        return max(0, len(self._senders) - 1)

    def mixing_row(self) -> dict[int, float]:
        total = sum(self._senders.values())
        return {s: w / total for s, w in self._senders.items()}

    def out_of_bound(self, model: np.ndarray) -> bool:
        """``defence.max_rms``, checked on the host before the model is forwarded."""
        return self.host.out_of_bound(model)

    def discard(self) -> None:
        if self.active and not self.on_host:
            try:
                self.client.merge_discard()
            except LINK_FAULTS as exc:
                if self.report is None:
                    raise
                self.report(f"coprocessor failed discarding a merge step ({exc})")
        self.host.discard()
        self.active = False

    def finalise(self, out: np.ndarray) -> np.ndarray:
        if not self.on_host:
            try:
                with self.client.lock:
                    self.client.merge_finalise()
                    model = get_model(self.client, self.robot_id, self.mtu)
            except LINK_FAULTS as exc:
                self._fault("finalising a merge step", exc)
            else:
                close_for_result(self, out)
                self.host.discard()
                out[...] = model
                return out
        close_for_result(self, out)
        return self.host.finalise(out)
