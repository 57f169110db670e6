"""Every shipped option, run end to end (config -> swarm of agents -> in-process medium -> metrics),
each with a check of what that option, and only it, changes.

The ROS counterpart (robots that train, ``learning.epochs > 0``) lives in ``test_ros_nodes.py``
beside the other rclpy swarm tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gossip_learning import wire
from gossip_learning.config import Config, config_from_dict
from gossip_learning.datasets import Dataset, standardize_with
from gossip_learning.experiment import Swarm, load_data
from gossip_learning.learner import evaluate
from gossip_learning.schedule import PhaseKind
from gossip_learning.wire import Layer, Role
from test_experiment import small


def config(**sections: dict[str, Any]) -> Config:
    """12 robots on separable synthetic data, linear head (68 parameters), 4 rounds."""
    raw = small(experiment={"rounds": 4, "methods": ["bilayer"]})
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return config_from_dict(raw)


NO_TRAINING = {"epochs": 0, "init": "per_robot"}  # gossip alone moves the models
#: Label skew: each robot sees mostly one or two classes, so training alone (method ``local``) is
#: clearly worse than gossip; the learning checks require a margin over local-only on it.
SKEW = {"partition": "dirichlet", "alpha": 0.1}
SPREAD: dict[str, dict[str, Any]] = {  # 30 robots, range 40: several clusters
    "swarm": {"num_robots": 30},
    "channel": {"comm_range": 40.0},
}


Row = dict[str, Any]


def run(cfg: Config, rounds: int | None = None) -> tuple[Swarm, list[Row]]:
    """A bilayer swarm after ``rounds`` rounds (default: the config's), and its metric rows."""
    swarm = Swarm(cfg, "bilayer", 0, load_data(cfg))
    return swarm, [swarm.step()[0] for _ in range(rounds or cfg.experiment.rounds)]


def local_final(cfg: Config) -> float:
    """Final accuracy of training alone (no communication), same config and seed."""
    swarm = Swarm(cfg, "local", 0, load_data(cfg))
    return float([swarm.step()[0] for _ in range(cfg.experiment.rounds)][-1]["acc_mean"])


def _data() -> Dataset:
    return load_data(config())


def slots(swarm: Swarm, kind: PhaseKind, layer: Layer) -> set[int]:
    return {ph.slot for ph in swarm.driver.schedule if ph.kind == kind and ph.layer == layer}


# ------------------------------------------------------------------ gossip.dtype


@pytest.fixture(scope="module")
def f32_run() -> tuple[Swarm, list[Row]]:
    return run(config(gossip={"mode": "broadcast", "dtype": "f32"}, data=SKEW))


@pytest.mark.parametrize(("dtype", "width"), [("f16", 2), ("int8", 1)])
def test_models_travel_in_the_configured_dtype(
    f32_run: tuple[Swarm, list[Row]], dtype: str, width: int
) -> None:
    """Same swarm, same messages; each model message is (4 - width) bytes per parameter smaller,
    and the swarm still learns."""
    cfg = config(gossip={"mode": "broadcast", "dtype": dtype}, data=SKEW)
    swarm, rows = run(cfg)
    ref_swarm, ref_rows = f32_run
    ref = ref_swarm.network.stats
    stats = swarm.network.stats
    assert stats.by_topic == ref.by_topic  # the protocol sent the very same messages
    models = stats.by_topic["cluster"] + stats.by_topic.get("inter", 0)  # MODEL frames only
    assert models > 0
    params = swarm.spec.num_params()
    assert ref.bytes_sent - stats.bytes_sent == models * params * (4 - width)
    # per model message: header + CRC + the vector, now `width` bytes a value
    f32_frame = wire.OVERHEAD + 4 * params
    frame = f32_frame - (ref.bytes_sent - stats.bytes_sent) // models
    assert frame == wire.OVERHEAD + width * params
    # a model received in this dtype is merged: the mixing happened, and learning still works
    assert sum(a.window.merged_total for a in swarm.agents) > 0
    accs = [r["acc_mean"] for r in rows]
    assert accs[-1] > local_final(cfg) + 0.3  # measured 0.81 against 0.42
    assert accs[-1] == pytest.approx(ref_rows[-1]["acc_mean"], abs=0.03)


# ------------------------------------------------------------------ gossip.handoff


def test_handoff_merge_mixes_the_heads_model_into_each_members() -> None:
    """Without training, a run with hand-off ``none`` gives every model just before the hand-off.
    With ``adopt`` a member then holds exactly its head's model; with ``merge`` the sample-weighted
    mean of its own and its head's."""
    gossip = {"mode": "pairwise", "intra_steps": 1}
    before, adopt, merge = (
        run(config(gossip={**gossip, "handoff": h}, learning=NO_TRAINING), rounds=1)[0]
        for h in ("none", "adopt", "merge")
    )
    head_slot = slots(merge, PhaseKind.HEAD_FINISH, Layer.HEAD)
    w = {a.id: a.params for a in before.agents}
    n = {a.id: a.num_samples for a in before.agents}
    checked = 0
    for a, b in zip(merge.agents, adopt.agents, strict=True):
        rows = [row for slot, row in a.window.mix_log if slot in head_slot]
        if a.state.role != Role.MEMBER or not rows:
            continue
        h = a.state.head
        share = n[h] / (n[a.id] + n[h])
        assert rows == [pytest.approx({a.id: 1 - share, h: share})]
        expected = (n[a.id] * w[a.id].astype(np.float64) + n[h] * w[h]) / (n[a.id] + n[h])
        np.testing.assert_allclose(a.params, expected, rtol=1e-5, atol=1e-6)
        assert not np.allclose(a.params, w[h])  # a mix, not a copy
        np.testing.assert_array_equal(b.params, w[h])  # adopt: the head's model exactly
        checked += 1
    assert checked >= 3


# ------------------------------------------------------------------ gossip.inter_peers


def test_border_members_gossip_across_clusters() -> None:
    """30 robots, range 40: several clusters. With ``heads`` only heads send on the inter layer;
    with ``border`` members do too, and they merge models from robots of other clusters."""
    out = {}
    for peers in ("heads", "border"):
        gossip = {"mode": "broadcast", "inter_peers": peers}
        swarm, _ = run(config(gossip=gossip, learning=NO_TRAINING, **SPREAD), rounds=1)
        inter_finish = slots(swarm, PhaseKind.FINISH, Layer.INTER)
        cluster = {a.id: a.state.cluster for a in swarm.agents}
        merged_from_other_clusters = {
            a.id: [
                j
                for slot, row in a.window.mix_log
                if slot in inter_finish
                for j in row
                if j != a.id
            ]
            for a in swarm.agents
        }
        for i, senders in merged_from_other_clusters.items():
            assert all(cluster[j] != cluster[i] for j in senders)
        members = [a.id for a in swarm.agents if a.state.role != Role.HEAD]
        out[peers] = (
            swarm.network.stats.by_topic.get("inter", 0),
            sum(a.state.role == Role.HEAD for a in swarm.agents),
            sum(1 for i in members if merged_from_other_clusters[i]),
        )
    inter_heads, heads, members_merged = out["heads"]
    assert inter_heads <= heads and members_merged == 0
    inter_border, heads, members_merged = out["border"]
    assert inter_border > heads  # non-heads sent on the inter layer
    assert members_merged >= 5


# ------------------------------------------------------------------ data.standardize


def test_local_standardisation_uses_each_robots_own_statistics() -> None:
    """Each robot standardises its data with its own mean/std (skewed partitions: they differ),
    trains on that, and is evaluated through its own statistics folded into the model."""
    cfg = config(
        data={"standardize": "local", "partition": "dirichlet", "alpha": 0.5},
        gossip={"mode": "broadcast"},
    )
    swarm, rows = run(cfg)
    data: Dataset = swarm.data
    assert len(swarm.local_stats) == 12
    means = np.stack([m for m, _ in swarm.local_stats])
    stds = np.stack([s for _, s in swarm.local_stats])
    assert np.ptp(means, axis=0).max() > 0.5 and np.ptp(stds, axis=0).max() > 0.2
    x0, _, stats0 = swarm.plan.robot_data(0)
    assert stats0 is not None
    np.testing.assert_allclose(x0.mean(axis=0), 0.0, atol=1e-4)  # robot 0 trains on z-scores
    # evaluation = each model on the test set standardised with its robot's own statistics
    acc, loss = swarm.evaluate()
    X, y = data.X_test[swarm.eval_idx], data.y_test[swarm.eval_idx]
    raw_acc = []
    for a in swarm.agents:
        mean, std = swarm.local_stats[a.id]
        own_acc, own_loss = evaluate(swarm.spec, a.params, standardize_with(X, mean, std), y)
        assert acc[a.id] == pytest.approx(own_acc[0]) and loss[a.id] == pytest.approx(
            own_loss[0], rel=1e-4
        )
        raw_acc.append(evaluate(swarm.spec, a.params, X, y)[0][0])
    assert not np.allclose(raw_acc, acc)  # without the robot's statistics the scores differ
    assert rows[-1]["acc_mean"] == pytest.approx(float(acc.mean()))  # what the metrics report
    accs = [r["acc_mean"] for r in rows]
    assert accs[-1] > accs[0] + 0.3 and accs[-1] > 0.7  # chance is 0.25


# ------------------------------------------------------------------ the remaining choices


def _partition(swarm: Swarm) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for a in swarm.agents:
        if a.state.cluster >= 0:
            groups.setdefault(a.state.cluster, set()).add(a.id)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("criterion", ["emd", "mixed"])
def test_label_aware_clustering_criteria_change_the_clusters(criterion: str) -> None:
    """Skewed labels: joining by label distribution (or a mix) groups robots differently."""
    skew = {"partition": "dirichlet", "alpha": 0.1}
    geo, _ = run(config(data=skew, learning=NO_TRAINING, **SPREAD), rounds=2)
    other, rows = run(
        config(clustering={"criterion": criterion}, data=skew, learning=NO_TRAINING, **SPREAD),
        rounds=2,
    )
    assert rows[-1]["num_clusters"] >= 2
    assert _partition(other) != _partition(geo)


def test_paper_election_promotes_more_heads_than_local_max() -> None:
    """``paper``: every robot with enough neighbours and no head in range self-promotes."""
    _, local_rows = run(config(learning=NO_TRAINING, **SPREAD), rounds=1)
    _, paper_rows = run(
        config(clustering={"election": "paper"}, learning=NO_TRAINING, **SPREAD), rounds=1
    )
    assert paper_rows[0]["num_heads"] > local_rows[0]["num_heads"] >= 1


def test_log_distance_channel_loses_frames_a_unit_disk_delivers() -> None:
    _, disk = run(config(learning=NO_TRAINING), rounds=2)
    _, shadowed = run(config(channel={"model": "log_distance"}, learning=NO_TRAINING), rounds=2)
    assert [r["msgs_dropped"] for r in disk] == [0, 0]
    assert all(r["msgs_dropped"] > 0 for r in shadowed)


@pytest.mark.parametrize("model", ["static", "random_waypoint", "random_direction"])
def test_mobility_models_move_the_robots_or_not(model: str) -> None:
    swarm = Swarm(config(mobility={"model": model}, learning=NO_TRAINING), "bilayer", 0, _data())
    start = swarm.positions.copy()
    for _ in range(3):
        swarm.step()
    moved = np.linalg.norm(swarm.positions - start, axis=1)
    if model == "static":
        np.testing.assert_array_equal(moved, 0.0)
    else:
        assert (moved > 0).mean() > 0.5  # most robots moved (a waypoint robot may pause)
        assert moved.max() <= 2 * 1.5 + 1e-9  # two moves of at most speed(_max) 1.5 per round


def test_sgd_and_mlp_train_the_swarm() -> None:
    """Optimiser ``sgd`` and head ``mlp``: each learns, beats training alone on skewed labels,
    and each changes the result."""
    _, adam = run(config(experiment={"rounds": 3}, data=SKEW))
    sgd_cfg = config(experiment={"rounds": 3}, learning={"optimizer": "sgd", "lr": 0.1}, data=SKEW)
    mlp_cfg = config(experiment={"rounds": 3}, learning={"head": "mlp", "hidden": [8]}, data=SKEW)
    (sgd_swarm, sgd), (mlp_swarm, mlp) = run(sgd_cfg), run(mlp_cfg)
    assert mlp_swarm.spec.num_params() == 16 * 8 + 8 + 8 * 4 + 4
    assert sgd_swarm.spec.num_params() == 16 * 4 + 4
    for cfg, rows, margin in ((sgd_cfg, sgd, 0.1), (mlp_cfg, mlp, 0.05)):  # 0.17 and 0.08 measured
        assert rows[-1]["acc_mean"] > local_final(cfg) + margin
        assert rows[-1]["train_loss"] < rows[0]["train_loss"]
        assert rows[-1]["acc_mean"] != adam[-1]["acc_mean"]


def test_dirichlet_partition_skews_the_robots_labels() -> None:
    from gossip_learning.partition import mean_label_skew

    iid, _ = run(config(learning=NO_TRAINING), rounds=1)
    skewed, _ = run(
        config(data={"partition": "dirichlet", "alpha": 0.1}, learning=NO_TRAINING), rounds=1
    )
    assert mean_label_skew(iid.label_histograms) < 0.3
    assert mean_label_skew(skewed.label_histograms) > 0.8


def test_global_standardisation_scales_train_and_test_alike() -> None:
    raw = load_data(config())
    std = load_data(config(data={"standardize": "global"}))
    np.testing.assert_allclose(std.X_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(std.X_train.std(axis=0), 1.0, atol=1e-3)
    mean, sd = raw.X_train.mean(axis=0), raw.X_train.std(axis=0)
    np.testing.assert_allclose(std.X_test, (raw.X_test - mean) / sd, atol=1e-4)
    cfg = config(data={"standardize": "global", **SKEW}, experiment={"rounds": 3})
    _, rows = run(cfg)
    assert rows[-1]["acc_mean"] > local_final(cfg) + 0.15  # measured 0.64 against 0.41


def test_eval_subset_scores_on_that_many_test_samples() -> None:
    swarm, rows = run(config(data={"eval_subset": 37}, experiment={"rounds": 1}))
    assert len(swarm.eval_idx) == 37 and len(set(swarm.eval_idx.tolist())) == 37
    acc, _ = swarm.evaluate()
    np.testing.assert_allclose(acc * 37, np.round(acc * 37), atol=1e-9)  # k/37 each
    assert rows[0]["acc_mean"] == pytest.approx(float(acc.mean()))


@pytest.mark.parametrize("spectral", ["never", "always"])
def test_spectral_setting_turns_the_gaps_off_or_on(spectral: str) -> None:
    _, rows = run(config(experiment={"spectral": spectral}, learning=NO_TRAINING), rounds=1)
    gaps = [rows[0]["spectral_gap_comm"], rows[0]["spectral_gap_mix"], rows[0]["mix_reach"]]
    if spectral == "never":
        assert all(np.isnan(g) for g in gaps)
    else:
        assert all(0.0 < g <= 1.0 for g in gaps)


def test_handoff_none_sends_no_head_models() -> None:
    """No hand-off phase: nothing goes out on the head layer, members keep their own models."""
    gossip = {"mode": "pairwise", "intra_steps": 1, "matching": "single"}  # retry: free notices
    none, _ = run(config(gossip={**gossip, "handoff": "none"}, learning=NO_TRAINING), rounds=1)
    adopt, _ = run(config(gossip={**gossip, "handoff": "adopt"}, learning=NO_TRAINING), rounds=1)
    assert not slots(none, PhaseKind.HEAD_SEND, Layer.HEAD)
    # pairwise gossip goes robot to robot: the cluster topics carry only the heads' hand-off
    heads = sum(a.state.role == Role.HEAD for a in adopt.agents)
    assert 1 <= adopt.network.stats.by_topic.get("cluster", 0) <= heads
    assert "cluster" not in none.network.stats.by_topic
    members = [a for a in none.agents if a.state.role == Role.MEMBER]
    params = {a.id: a.params for a in none.agents}
    assert any(not np.array_equal(params[a.id], params[a.state.head]) for a in members)


@pytest.mark.parametrize("dataset", ["digits", "npz"])
def test_other_datasets_run_end_to_end(dataset: str, tmp_path: Path) -> None:
    if dataset == "npz":
        src = load_data(config())
        path = tmp_path / "feats.npz"
        np.savez(
            path, X_train=src.X_train, y_train=src.y_train, X_test=src.X_test, y_test=src.y_test
        )
        data_cfg: dict[str, Any] = {"dataset": "npz", "params": {"path": str(path)}}
    else:
        data_cfg = {"dataset": "digits", "params": {}, "standardize": "global"}
    cfg = config(data={**data_cfg, **SKEW}, experiment={"rounds": 3})
    data = load_data(cfg)
    assert data.name == ("digits" if dataset == "digits" else "feats")
    _, rows = run(cfg)
    margin = 0.08 if dataset == "digits" else 0.15  # measured 0.12 (10 classes, 3 rounds), 0.2
    assert rows[-1]["acc_mean"] > local_final(cfg) + margin
