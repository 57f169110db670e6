"""Per-robot data files (``gossip-learning partition``): each robot's file holds exactly what the
in-process engine gives that robot for the same config and seed, and a file cut for another
experiment is refused with an error naming ``data_dir``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gossip_learning.cli import main as cli_main
from gossip_learning.config import dump_config, load_config
from gossip_learning.experiment import Swarm
from gossip_learning.plan import load_data
from gossip_learning.robot_data import read_robot_file, robot_file, robot_parts

SMALL = [
    "swarm.num_robots=6",
    "learning.head=mlp",
    "learning.hidden=[16]",
    "learning.init=per_robot",
    "data.eval_subset=100",
]


@pytest.mark.parametrize(
    "extra",
    [
        ["data.partition=iid"],
        ["data.partition=dirichlet", "data.alpha=0.3", "data.standardize=local"],
        ["data.standardize=global"],
    ],
)
def test_files_hold_the_in_process_engines_partition(tmp_path: Path, extra: list[str]) -> None:
    cfg = load_config(None, [*SMALL, *extra])
    seed = 3
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(dump_config(cfg), encoding="utf-8")
    out = tmp_path / "parts"
    set_args = [a for kv in [*SMALL, *extra] for a in ("--set", kv)]
    assert cli_main(["partition", str(cfg_file), "--out", str(out), "--seed", "3", *set_args]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"robot_{i}.npz" for i in range(6)]

    swarm = Swarm(cfg, "bilayer", seed, load_data(cfg))  # the engine, as `gossip-learning run`
    data = swarm.data
    seen = []
    for i in range(6):
        mine = read_robot_file(out, cfg, seed, i)
        np.testing.assert_array_equal(mine.train_idx, swarm.plan.parts[i])
        x, _, _ = swarm.plan.robot_data(i)
        np.testing.assert_array_equal(mine.x_train, x)
        np.testing.assert_array_equal(mine.y_train, data.y_train[mine.train_idx])
        np.testing.assert_array_equal(mine.params, swarm.agents[i].params)
        assert mine.samples == swarm.agents[i].num_samples == len(mine.y_train)
        np.testing.assert_allclose(mine.label_dist, swarm.plan.label_dist[i])
        assert mine.agent_seed == int(swarm.plan.agent_seeds[i])
        assert mine.spec == swarm.spec
        np.testing.assert_array_equal(mine.y_test, data.y_test[swarm.plan.eval_idx])
        assert len(mine.y_test) == 100
        # and the same as a robot cutting its slice from the whole dataset (no file)
        whole = robot_parts(cfg, seed, i)
        np.testing.assert_array_equal(mine.x_test, whole.x_test)
        np.testing.assert_array_equal(mine.x_train, whole.x_train)
        seen.append(mine.train_idx)
    # together the robots hold every training sample exactly once
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(len(data.y_train)))


def test_a_file_for_another_experiment_is_refused(tmp_path: Path) -> None:
    cfg = load_config(None, SMALL)
    from gossip_learning.robot_data import write_robot_files

    write_robot_files(cfg, 0, tmp_path)
    with pytest.raises(ValueError, match=r"parameter 'data_dir'.*seed 0 \(this robot: 1\)"):
        read_robot_file(tmp_path, cfg, 1, 2)
    other = load_config(None, [*SMALL, "data.partition=dirichlet"])
    with pytest.raises(ValueError, match=r"parameter 'data_dir'.*fingerprint"):
        read_robot_file(tmp_path, other, 0, 2)
    bigger = load_config(None, [*SMALL, "swarm.num_robots=7"])
    with pytest.raises(ValueError, match=r"parameter 'data_dir'.*num_robots 6 \(this robot: 7\)"):
        read_robot_file(tmp_path, bigger, 0, 2)
    # timing, channel and rounds do not change the data: the same files serve
    same = load_config(None, [*SMALL, "channel.comm_range=20", "experiment.rounds=3"])
    assert read_robot_file(tmp_path, same, 0, 2).samples > 0
    robot_file(tmp_path, 5).unlink()
    with pytest.raises(ValueError, match=r"parameter 'data_dir'.*no robot_5.npz.*partition"):
        read_robot_file(tmp_path, cfg, 0, 5)
    robot_file(tmp_path, 4).write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"parameter 'data_dir'.*cannot read robot_4.npz"):
        read_robot_file(tmp_path, cfg, 0, 4)
