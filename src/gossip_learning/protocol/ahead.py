"""Gossip models heard before this robot reached their step: kept until it does.

A broadcast step opens every robot's merge window in the same phase (SEND) in which every robot
sends its model. In one process the simulator runs that phase on every robot before it delivers
anything; robots on their own clocks (one ROS process each) start the phase a tick apart, so a
neighbour's model can arrive before this robot has opened the window it belongs in. Refused then
(as ``late``), it is lost to the merge although it came in time. :class:`AheadModels` keeps such
models (intra- and inter-cluster ``MODEL`` frames of the current round whose step is after the
robot's slot and which passed the inbox's checks), up to :data:`MAX_AHEAD`, and hands them back
once the robot's slot reaches their step; past the cap they go through at once (and are refused
as before).
"""

from __future__ import annotations

from collections.abc import Callable

from gossip_learning.messages import Kind, Layer, Message

MAX_AHEAD = 1024
_GOSSIP_LAYERS = (Layer.INTRA, Layer.INTER)


class AheadModels:
    """Gossip models of a step this robot has not started yet."""

    def __init__(self, cap: int = MAX_AHEAD) -> None:
        self.cap = cap
        self._held: list[Message] = []

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, msg: Message, round_no: int, slot: int) -> bool:
        """Keep ``msg`` if it is a gossip model of round ``round_no`` for a step after ``slot``
        (and the cap is not reached); whether it was kept."""
        ahead = (
            msg.kind is Kind.MODEL
            and msg.layer in _GOSSIP_LAYERS
            and msg.round == round_no
            and msg.step > slot
        )
        if ahead and len(self._held) < self.cap:
            self._held.append(msg)
            return True
        return False

    def due(self, round_no: int, slot: int) -> list[Message]:
        """The kept models whose step ``slot`` has reached, or of another round than
        ``round_no`` (to be refused as stale); the others stay."""
        due = [m for m in self._held if m.round != round_no or m.step <= slot]
        if due:
            self._held = [m for m in self._held if m.round == round_no and m.step > slot]
        return due

    def release(self, round_no: int, slot: int, use: Callable[[Message], str | None]) -> list[str]:
        """``use`` each model :meth:`due` gives; the reasons it refused some for."""
        return [r for r in map(use, self.due(round_no, slot)) if r is not None]
