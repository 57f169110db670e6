"""One robot's protocol, written once and driven phase by phase.

:class:`RobotAgent` owns the robot's model and a phase table; the protocol itself lives in small
parts that each own their state: :class:`~.membership.Membership` (DK-means),
:mod:`~.exchange` (pairwise push-pull or broadcast), :class:`~.handoff.HandOff`,
:class:`~.inbox.Inbox` (validation, rejection reasons, early buffer) and
:class:`~.window.MergeWindow` (cumulative FedAvg of one gossip step). Nothing here imports ROS or
the wire format: the agent talks through the :class:`~gossip_learning.transports.base.Transport`
and :class:`~.ports.Trainer` ports.
"""

from gossip_learning.protocol.agent import RobotAgent
from gossip_learning.protocol.ports import Trainer, TrainJob
from gossip_learning.protocol.report import RoundReport
from gossip_learning.protocol.settings import AgentSettings

__all__ = ["AgentSettings", "RobotAgent", "RoundReport", "TrainJob", "Trainer"]
