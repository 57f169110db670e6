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

import numpy as np

from gossip_learning import wire
from gossip_learning.aggregation import close_for_result, is_new_sender
from gossip_learning.coprocessor.client import Coprocessor
from gossip_learning.learner import HeadSpec
from gossip_learning.learning.batching import batch_order
from gossip_learning.messages import Kind, Message
from gossip_learning.training import Done, training_seed

DEFAULT_MTU = 512  # bytes of one wire frame on the link (micro-ROS serial transport)


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
        if not wire.OVERHEAD < mtu < info.max_packet_data:
            raise ValueError(f"mtu {mtu} out of range")
        self.client, self.spec = client, spec
        self.X = np.ascontiguousarray(X, dtype=np.float32)
        self.y = np.asarray(y, dtype=np.int64)
        self.seed, self.robot_id = seed, robot_id
        self.epochs, self.batch_size, self.mtu = int(epochs), int(batch_size), int(mtu)
        self.version = spec.version()
        client.configure(
            spec.in_dim, spec.num_classes, optimizer, lr, weight_decay, self.version, robot_id
        )
        self.last_train_us: list[int] = []

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


class CoprocessorAccumulator:
    """Cumulative FedAvg on the coprocessor, with :class:`~gossip_learning.aggregation.
    CumulativeFedAvg`'s interface (a ``MergeWindow`` accumulator): the MCU holds S (float64) and
    N; the host keeps only the senders' weights (for ``mixing_row``). Results equal the Python
    accumulator bit for bit (same float64 arithmetic); weights must be whole sample counts.
    The MCU's head is overwritten by ``reset`` (the robot's own model)."""

    def __init__(self, client: Coprocessor, spec: HeadSpec, robot_id: int, mtu: int = DEFAULT_MTU):
        check_head(client, spec)
        self.client, self.spec, self.robot_id, self.mtu = client, spec, robot_id, mtu
        self.size = spec.num_params()
        self.version = spec.version()
        self.active = False
        self._senders: dict[int, float] = {}

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
        frames = model_frames(own, owner, self.version, self.mtu)
        with self.client.lock:
            put_model(self.client, frames, merge=False)
            self.client.merge_reset(n)
        self._senders = {owner: float(weight)}
        self.active = True

    def add(self, sender: int, model: np.ndarray, weight: float) -> bool:
        if not is_new_sender(self, sender, model, weight):
            return False
        n = self._count(weight)
        put_model(self.client, model_frames(model, sender, self.version, self.mtu, n), merge=True)
        self._senders[sender] = float(weight)
        return True

    @property
    def merged(self) -> int:
        return max(0, len(self._senders) - 1)

    def mixing_row(self) -> dict[int, float]:
        total = sum(self._senders.values())
        return {s: w / total for s, w in self._senders.items()}

    def out_of_bound(self, model: np.ndarray) -> bool:
        """No norm bound: the firmware merges every model it is given (``defence.max_rms`` and
        clipping apply to the host accumulator only)."""
        return False

    def discard(self) -> None:
        if self.active:
            self.client.merge_discard()
        self.active = False

    def finalise(self, out: np.ndarray) -> np.ndarray:
        close_for_result(self, out)
        with self.client.lock:
            self.client.merge_finalise()
            out[...] = get_model(self.client, self.robot_id, self.mtu)
        return out
