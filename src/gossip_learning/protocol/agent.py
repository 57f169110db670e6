"""One robot: owns its model and runs the round's phases through a table of small parts.

The agent only publishes and subscribes through a :class:`~.transports.base.Transport`, trains
through a :class:`~.ports.Trainer`, merges in a :class:`~.window.Accumulator`, and is driven by
:class:`~gossip_learning.driver.RoundDriver` (in-process, in a ROS node or in a test). It never
knows which. Nothing outside the agent writes its model.
"""

from __future__ import annotations

import threading

import numpy as np

from gossip_learning.messages import DTYPE_NAMES, Kind, Layer, Message
from gossip_learning.protocol.agent_views import AgentViews
from gossip_learning.protocol.ahead import AheadModels
from gossip_learning.protocol.bounds import Bounds
from gossip_learning.protocol.exchange import MessageHandler, PhaseHandler
from gossip_learning.protocol.handoff import HandOff
from gossip_learning.protocol.inbox import Inbox
from gossip_learning.protocol.membership import Membership
from gossip_learning.protocol.outbox import Outbox, Subscriptions
from gossip_learning.protocol.pairwise import make_exchange
from gossip_learning.protocol.ports import Learning, Matchmaker, Trainer
from gossip_learning.protocol.settings import AgentSettings
from gossip_learning.protocol.window import Accumulator, MergeWindow
from gossip_learning.schedule import Phase, PhaseKind
from gossip_learning.transports.base import BEACON_TOPIC, Transport, robot_topic


class RobotAgent(AgentViews):
    """The protocol of one robot, as a phase table over its parts."""

    def __init__(
        self,
        robot_id: int,
        settings: AgentSettings,
        transport: Transport,
        params: np.ndarray,
        num_samples: int,
        label_dist: np.ndarray,
        seed: int,
        trainer: Trainer | None = None,
        accumulator: Accumulator | None = None,
        matchmaker: Matchmaker | None = None,
    ) -> None:
        if params.shape != (settings.num_params,):
            raise ValueError(f"params shape {params.shape} != ({settings.num_params},)")
        self.id = robot_id
        self.settings = settings
        self.transport = transport
        self.learning = Learning(trainer)
        self._params = params.astype(np.float32, copy=True)
        self.num_samples = max(1, int(num_samples))
        self.label_dist = np.asarray(label_dist, dtype=np.float32)
        self._label_tuple = tuple(self.label_dist.tolist())
        self.lock = threading.RLock()
        self.x = self.y = 0.0
        self.round = 0
        self.slot = -1
        g = settings.gossip
        rng = np.random.default_rng(seed)
        self.membership = Membership(
            robot_id, settings.method, settings.clustering, settings.comm_range, g.inter_peers, rng
        )
        self.inbox = Inbox(robot_id, settings.model_version, settings.num_params, settings.defence)
        self.ahead = AheadModels()  # gossip models heard before this robot reached their step
        self.window = MergeWindow(
            robot_id, settings.num_params, settings.defence, accumulator, g.window == "round",
            g.window_start == "before_training",
        )  # fmt: skip
        self.bounds = Bounds(settings.defence)
        self.outbox = Outbox(
            robot_id, transport, self.membership, self.num_samples, settings.model_version,
            DTYPE_NAMES[g.dtype], g.repeat_loss,
        )  # fmt: skip
        parts = (self.membership, self.window, self.outbox, lambda: self._params, self._merge)
        self.exchange = make_exchange(g, parts, rng, matchmaker)  # matchmaker: simulator only
        self.handoff = HandOff(g.handoff, *parts)
        self.peak_bytes = self._held_bytes()
        self._phases: dict[PhaseKind, PhaseHandler] = {
            PhaseKind.BEACON: self._beacon,
            PhaseKind.FINAL_BEACON: self._beacon,
            PhaseKind.ASSIGN: self._assign,
            PhaseKind.TRAIN: self._train,
            PhaseKind.FINISH: self._finish_step,
            PhaseKind.HEAD_SEND: self.handoff.send,
            PhaseKind.HEAD_FINISH: lambda ph, _: self.handoff.finish(ph.slot, self._params),
            PhaseKind.END: self._end,
            **self.exchange.phases(),
        }
        self._handlers: dict[Kind, MessageHandler] = {
            Kind.BEACON: self.membership.on_beacon,
            Kind.HANDOVER: self.membership.on_handover,
            Kind.MODEL: self._on_model,
            **self.exchange.handlers(),
        }
        self.subscriptions = Subscriptions(transport, self.handle, self.handle_beacons)
        self.subscriptions.sync(self.membership.topics())

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> np.ndarray:
        """The robot's current model (a read-only view)."""
        view = self._params.view()
        view.flags.writeable = False
        return view

    def adopt(self, model: np.ndarray, reboot: bool = False) -> None:
        """Take a model from outside (a CFL server's); ``reboot``: also restart in no cluster."""
        with self.lock:
            np.copyto(self._params, model)
            if reboot:
                self.membership.reboot()
                self.subscriptions.sync(self.membership.topics())

    def _held_bytes(self, incoming: np.ndarray | None = None) -> int:
        held = self._params.nbytes + self.window.nbytes + self.inbox.nbytes + self.handoff.nbytes
        return held + (0 if incoming is None else incoming.nbytes)

    def _merge(self, msg: Message) -> str | None:
        assert msg.model is not None
        self.peak_bytes = max(self.peak_bytes, self._held_bytes(msg.model))
        admitted = self.bounds.admit(msg, self._params)  # refused, or clipped and capped
        return admitted if isinstance(admitted, str) else self.window.merge(admitted)

    def set_position(self, x: float, y: float) -> None:
        """Update the robot's own position (from mobility or odometry)."""
        with self.lock:
            self.x, self.y = float(x), float(y)

    # -------------------------------------------------------------- receiving
    def handle(self, msg: Message) -> None:
        """Take one decoded message from the transport (thread-safe)."""
        with self.lock:
            if self.inbox.is_current_beacon(msg, self.round, self.slot):  # the frequent case
                assert msg.beacon is not None
                self.membership.hear(msg.step, msg.sender, msg.cluster, msg.beacon)
            else:
                self._dispatch(msg)

    def handle_beacons(self, msgs: list[Message]) -> None:
        """Many broadcasts sharing kind, round and step (a transport's batch): the same as
        :meth:`handle` on each, current beacons kept in one go."""
        with self.lock:
            current = self.inbox.current_beacons(msgs, self.round, self.slot)
            if current is not None:
                self.membership.hear_all(msgs[0].step, *current)
                return
        for m in msgs:
            self.handle(m)

    def _dispatch(self, msg: Message) -> None:
        m = self.membership
        if not self.inbox.screen(msg, self.round, self.slot, m.state.head, *m.senders):
            return
        handler = self._handlers.get(msg.kind)
        reason = "unknown_kind" if handler is None else handler(msg)
        if reason is not None:
            self.inbox.reject(reason)

    def _on_model(self, msg: Message) -> str | None:
        if msg.layer == Layer.HEAD:
            assert msg.model is not None  # the adopt path: the same bounds as a merge
            admitted = self.bounds.admit(msg, self._params)
            if not isinstance(admitted, str) and self.window.acc.out_of_bound(msg.model):
                admitted = "norm_bound"
            reason = admitted if isinstance(admitted, str) else self.handoff.on_model(admitted)
            if reason is None and self.handoff.held is not None:
                self.peak_bytes = max(self.peak_bytes, self._held_bytes())
            return reason
        if self.ahead.hold(msg, self.round, self.slot):  # its step has not started here
            return None
        return self.exchange.on_model(msg)

    # ----------------------------------------------------------------- phases
    def begin_round(self, round_no: int) -> None:
        """Start round ``round_no`` (from 1): forget the last round's messages."""
        with self.lock:
            self.round = self.outbox.round = round_no
            self.slot = self.outbox.slot = -1
            self.membership.begin_round()
            self.exchange.reset()
            self.window.begin_round()
            self.inbox.rejected.update(self.ahead.release(round_no, -1, lambda _: "late"))
            for msg in self.inbox.release_early():
                self._dispatch(msg)

    def settle_training(self) -> None:
        """Wait for the training started in TRAIN (if any) and take its result as the model."""
        self.bounds.trained(self.learning.settle(self._params, self.lock))

    def run_phase(self, phase: Phase, finish_slot: int = -1) -> None:
        """Do this robot's part of ``phase``. ``finish_slot`` is the slot closing its step."""
        self.settle_training()  # training must end before the model is used again
        with self.lock:
            self.slot = self.outbox.slot = phase.slot
            self._phases[phase.kind](phase, finish_slot)
            self.inbox.rejected.update(self.ahead.release(self.round, phase.slot, self._on_model))

    def _beacon(self, phase: Phase, _: int) -> None:
        b = self.membership.beacon(self.x, self.y, self._label_tuple)
        self.outbox.send(BEACON_TOPIC, Kind.BEACON, layer=Layer.CLUSTER, beacon=b)

    def _assign(self, phase: Phase, _: int) -> None:
        handover_to = self.membership.assign(phase.slot, self.x, self.y, self.label_dist)
        if handover_to is not None:
            self.outbox.send(robot_topic(handover_to), Kind.HANDOVER, handover_to, Layer.CLUSTER)

    def _train(self, phase: Phase, _: int) -> None:
        self.membership.settle(phase.slot)
        beacons = self.membership.senders[0].values()
        self.bounds.set_declared(self.num_samples, (b.samples for b in beacons))
        self.subscriptions.sync(self.membership.topics())
        self.window.hold_untrained(self._params)
        self.learning.start(self._params, self.round)

    def _finish_step(self, phase: Phase, _: int) -> None:
        g = self.settings.gossip
        steps = g.intra_steps if phase.layer == Layer.INTRA else g.inter_steps
        self.window.close_step(phase.slot, phase.layer, self._params, phase.index + 1 >= steps)

    def _end(self, phase: Phase, _: int) -> None:
        self.window.close(phase.slot, self._params)
        self.exchange.reset()
        self.membership.end_round()

    # reporting (report, status, train_loss, state): AgentViews
    params = model  # the model (read-only view), by its older name
