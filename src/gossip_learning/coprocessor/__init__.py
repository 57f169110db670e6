"""The RP2040 coprocessor: firmware under ``firmware/`` trains and merges a robot's head; this
package is the robot computer's side of it (docs/rp2040.md).

* :mod:`.protocol`: the serial framing (COBS + CRC-32 packets) and the command set;
* :mod:`.links`: byte streams to a firmware: a serial port, the emulator (rp2040js) as a
  subprocess, or the host build of the same C core loaded with ctypes;
* :mod:`.client`: :class:`Coprocessor`, one method per command;
* :mod:`.trainer`: :class:`CoprocessorTrainer` (the agent's Trainer port) and
  :class:`CoprocessorAccumulator` (cumulative FedAvg on the MCU, for ``MergeWindow``).
"""

from gossip_learning.coprocessor.client import Coprocessor, CoprocessorError
from gossip_learning.coprocessor.trainer import CoprocessorAccumulator, CoprocessorTrainer

__all__ = ["Coprocessor", "CoprocessorAccumulator", "CoprocessorError", "CoprocessorTrainer"]
