"""A mixed swarm: some robots learn and merge on emulated RP2040s (the Pico image on rp2040js,
through CoprocessorTrainer / CoprocessorAccumulator over the emulator's UART pipe), the rest on
the host; it converges like the all-host swarm on the same seed."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
import pytest

from gossip_learning.config import config_from_dict
from gossip_learning.coprocessor import CoprocessorAccumulator, CoprocessorTrainer
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.protocol.ports import Trainer
from gossip_learning.protocol.window import Accumulator
from rp2040_support import device, emulated_device
from test_experiment import small

pytestmark = pytest.mark.slow
MCU_ROBOTS = (1, 4)
ROUNDS = 4
# MCU training equals the numpy trainer to ~1e-7 per round and merges are bit-identical, so the
# two swarms may differ only by float rounding carried through the rounds.
ACC_TOL = 0.01
PARAM_TOL = 1e-4


def _cfg() -> dict:  # type: ignore[type-arg]
    """test_experiment's small synthetic swarm, 6 robots and 600 samples."""
    raw = small(experiment={"rounds": ROUNDS, "methods": ["bilayer"]}, swarm={"num_robots": 6})
    raw["data"]["params"].update(num_train=600, num_test=200)
    return raw


def _run(
    kind: str | None, dist_median: float = 0.0, mcu: tuple[int, ...] = MCU_ROBOTS
) -> tuple[list[float], np.ndarray]:
    raw = _cfg()
    raw.setdefault("defence", {})["dist_median"] = dist_median
    cfg = config_from_dict(raw)
    data = load_data(cfg)
    host = Swarm(cfg, "bilayer", 0, data)
    trainers: dict[int, Trainer] = {}
    accumulators: dict[int, Accumulator] = {}
    with ExitStack() as stack:
        if kind is not None:
            lc = cfg.learning
            for i in mcu:
                dev = stack.enter_context(device(kind) if kind == "host" else emulated_device())
                x, y, _ = host.plan.robot_data(i)
                trainers[i] = CoprocessorTrainer(
                    dev, host.spec, x, y, 0, i, lr=lc.lr, weight_decay=lc.weight_decay,
                    epochs=lc.epochs, batch_size=lc.batch_size, optimizer=lc.optimizer,
                )  # fmt: skip
                accumulators[i] = CoprocessorAccumulator(dev, host.spec, i)
            swarm = Swarm(cfg, "bilayer", 0, data, trainers, accumulators)
        else:
            swarm = host
        accs = [float(swarm.step()[0]["acc_mean"]) for _ in range(ROUNDS)]
        models = np.stack([a.model for a in swarm.agents])
        merged = sum(a.window.merged_total for i, a in enumerate(swarm.agents) if i in mcu)
        assert kind is None or merged > 0  # the MCU robots did merge neighbours' models
        pulled = sum(a.bounds.clipped for i, a in enumerate(swarm.agents) if i in mcu)
        assert (pulled > 0) == (dist_median > 0)  # dist_median pulled models they merged
    return accs, models


def test_mixed_swarm_with_emulated_rp2040_robots_converges_like_all_host() -> None:
    ref_acc, ref_models = _run(None)
    acc, models = _run("emulator")
    assert ref_acc[-1] > 0.8  # the all-host swarm learns this data
    assert abs(acc[-1] - ref_acc[-1]) <= ACC_TOL, (acc, ref_acc)
    np.testing.assert_allclose(models, ref_models, rtol=0, atol=PARAM_TOL)


def test_dist_median_pulls_a_model_before_the_coprocessor_merges_it() -> None:
    """``defence.dist_median`` (issue 20) runs on the host before the accumulator: robots whose
    merges run on the chip (its host build) pull the same models onto the same sphere as the
    numpy accumulator, so the swarm ends where the all-host swarm with the bound ends, and away
    from the all-host swarm without it. One robot on the chip: the host build is one library
    per process."""
    ref_acc, ref_models = _run(None, 0.5)
    acc, models = _run("host", 0.5, (1,))
    assert abs(acc[-1] - ref_acc[-1]) <= ACC_TOL, (acc, ref_acc)
    np.testing.assert_allclose(models, ref_models, rtol=0, atol=PARAM_TOL)
    _, unbounded = _run(None)
    assert np.abs(unbounded - ref_models).max() > 10 * PARAM_TOL  # the bound changed the run
