"""Build one robot's or one swarm's parts from a config and a seed.

:class:`SwarmPlan` fixes everything a (config, seed) decides before any robot runs: start
positions, data partition, initial head, agent seeds, evaluation subset. The in-process
simulator and the ROS nodes both build from it (nodes never import the simulator), so a launched
swarm and an in-process run of the same config and seed start from the same state. Also here:
the channel, mobility and training engine a config asks for, and the dataset loader.
"""

from __future__ import annotations

import numpy as np

from gossip_learning.config import Config
from gossip_learning.datasets import (
    Dataset,
    fit_standardizer,
    load_dataset,
    standardize,
    standardize_with,
)
from gossip_learning.errors import ConfigError, DataError
from gossip_learning.learner import HeadSpec, init_params
from gossip_learning.mobility import (
    MobilityModel,
    make_mobility,
    model_params,
    uniform_positions,
)
from gossip_learning.partition import dirichlet_partition, iid_partition, label_histograms
from gossip_learning.protocol import AgentSettings
from gossip_learning.robot_data import channel_for, fleet_auth, trainer_for

__all__ = [
    "SwarmPlan",
    "channel_for",
    "fleet_auth",
    "head_spec",
    "load_data",
    "mobility_for",
    "partition",
    "swarm_motion",
    "trainer_for",
]


def head_spec(cfg: Config, data: Dataset) -> HeadSpec:
    """The classifier head the config asks for, sized to the data."""
    return HeadSpec(cfg.learning.head, data.dim, data.num_classes, tuple(cfg.learning.hidden))


def load_data(cfg: Config) -> Dataset:
    """Load the configured dataset (with global standardisation if asked)."""
    if cfg.data.dataset == "cifar10-mcunet":
        import gossip_learning.vision  # noqa: F401  (registers the dataset)
    data = load_dataset(cfg.data.dataset, **cfg.data.params)
    return standardize(data, "global") if cfg.data.standardize == "global" else data


def partition(cfg: Config, data: Dataset, rng: np.random.Generator) -> list[np.ndarray]:
    """Split the training set across robots; errors name the config keys to change."""
    n = cfg.swarm.num_robots
    try:
        if cfg.data.partition == "iid":
            return iid_partition(len(data.y_train), n, rng, cfg.data.min_partition_size)
        return dirichlet_partition(
            data.y_train, n, cfg.data.alpha, rng, cfg.data.min_partition_size
        )
    except DataError as exc:
        key = "swarm.num_robots" if cfg.data.partition == "iid" else "data.alpha"
        raise ConfigError(key, f"{exc} (dataset '{data.name}')") from exc


def _validate_swarm(cfg: Config, data: Dataset) -> None:
    if cfg.swarm.num_robots > len(data.y_train):
        raise ConfigError(
            "swarm.num_robots",
            f"{cfg.swarm.num_robots} robots but only {len(data.y_train)} training samples in "
            f"'{data.name}': use fewer robots or a larger dataset",
        )


def mobility_for(cfg: Config, positions: np.ndarray, rng: np.random.Generator) -> MobilityModel:
    """The mobility model the config asks for, starting at ``positions``."""
    mob = cfg.mobility
    area = (cfg.swarm.area[0], cfg.swarm.area[1])
    return make_mobility(mob.model, positions, area, rng, **model_params(mob.model, mob))


def init_seed(cfg: Config, seed: int) -> int:
    """The seed of the swarm's initial head for experiment seed ``seed``: ``learning.init_seed``,
    or with ``auto`` the experiment seed itself (every seed then starts from its own head)."""
    chosen = cfg.learning.init_seed
    return seed if chosen == "auto" else int(chosen)


def initial_head_info(cfg: Config) -> dict[str, object]:
    """What the results say about the initial heads: scheme, shared or per robot, and the head
    seed each experiment seed used."""
    lc = cfg.learning
    return {
        "init_scheme": lc.init_scheme,
        "init": lc.init,
        "init_seed": lc.init_seed,
        "init_seed_by_seed": {str(s): init_seed(cfg, s) for s in cfg.experiment.seeds},
    }


def _plan_seeds(seed: int) -> list[np.random.SeedSequence]:
    """Positions, mobility, channel, partition, agents, evaluation: one stream each."""
    return np.random.SeedSequence([seed, 0x6055]).spawn(6)


def swarm_motion(cfg: Config, seed: int) -> MobilityModel:
    """The engine's mobility model for a (config, seed), at :attr:`SwarmPlan.positions` with the
    plan's mobility stream, built without loading any data: a ROS host that reads per-robot files
    moves its robots with it exactly as ``gossip-learning run`` does."""
    pos_ss, mob_ss = _plan_seeds(seed)[:2]
    area = (cfg.swarm.area[0], cfg.swarm.area[1])
    positions = uniform_positions(cfg.swarm.num_robots, area, np.random.default_rng(pos_ss))
    return mobility_for(cfg, positions, np.random.default_rng(mob_ss))


def start_poses(cfg: Config, seed: int) -> list[tuple[float, float, float]]:
    """Each robot's start ``(x, y, heading)`` for a (config, seed): :attr:`SwarmPlan.positions`
    and the first heading of the engine's mobility model, without loading any data (the launch
    file spawns robots here)."""
    motion = swarm_motion(cfg, seed)
    return [
        (float(x), float(y), float(h))
        for (x, y), h in zip(motion.positions, motion.headings, strict=True)
    ]


class SwarmPlan:
    """Everything a (config, seed) fixes before any robot runs: start positions, each robot's data,
    initial head (seed :attr:`init_seed`), agent seed and the evaluation subset. The in-process
    swarm and the ROS launch (:func:`start_poses`, swarm_node, per-robot data files) all build
    from it."""

    def __init__(self, cfg: Config, seed: int, data: Dataset) -> None:
        _validate_swarm(cfg, data)
        self.cfg, self.seed, self.data = cfg, seed, data
        pos_ss, mob_ss, chan_ss, part_ss, agent_ss, eval_ss = _plan_seeds(seed)
        n = cfg.swarm.num_robots
        area = (cfg.swarm.area[0], cfg.swarm.area[1])
        self.positions = uniform_positions(n, area, np.random.default_rng(pos_ss))
        self.mobility_rng = np.random.default_rng(mob_ss)
        self.channel_rng = np.random.default_rng(chan_ss)
        self.parts = partition(cfg, data, np.random.default_rng(part_ss))
        self.label_histograms = label_histograms(data.y_train, self.parts, data.num_classes)
        self.samples = self.label_histograms.sum(axis=1)
        self.label_dist = self.label_histograms / np.maximum(self.samples[:, None], 1)
        self.spec = head_spec(cfg, data)
        self.init_seed = init_seed(cfg, seed)
        self.agent_seeds = agent_ss.generate_state(n)
        k, n_test = cfg.data.eval_subset, len(data.y_test)
        erng = np.random.default_rng(eval_ss)
        self.eval_idx = (
            np.sort(erng.choice(n_test, k, replace=False)) if 0 < k < n_test else np.arange(n_test)
        )

    def settings(self, method: str) -> AgentSettings:
        """Protocol settings for ``method`` (cfl and local robots do not gossip)."""
        from gossip_learning.robot_data import agent_settings

        return agent_settings(self.cfg, self.spec, method)

    def initial_params(self, robot_id: int) -> np.ndarray:
        """Robot ``robot_id``'s first head: the fleet-wide one (from :attr:`init_seed`), or its
        own; drawn with ``learning.init_scheme``."""
        lc = self.cfg.learning
        head_seed = self.init_seed
        if lc.init != "shared":
            head_seed = head_seed * 100_003 + self.seed * 7919 + robot_id
        return init_params(self.spec, head_seed, lc.init_scheme)

    def robot_data(
        self, robot_id: int
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Robot ``robot_id``'s training features and labels, and its own standardiser if the
        config asks for local statistics (features are returned already standardised)."""
        idx = self.parts[robot_id]
        x = self.data.X_train[idx]
        stats = None
        if self.cfg.data.standardize == "local":
            stats = fit_standardizer(x)
            x = standardize_with(x, *stats)
        return x, self.data.y_train[idx], stats
