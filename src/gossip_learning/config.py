"""Experiment configuration: YAML in, checked dataclasses out.

Every key has a default, a type and (where it matters) allowed values or bounds. Unknown keys,
wrong types and out-of-range values raise :class:`ConfigError` naming the dotted key before any
work starts. ``--set section.key=value`` overrides are parsed as YAML scalars/lists.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gossip_learning.errors import ConfigError

METHODS = ("bilayer", "flat", "cfl", "local")
DATASETS = ("digits", "synthetic", "npz", "cifar10-mcunet")
# Upper bounds: past these a run would exhaust memory or time (or overflow a wire field).
MAX_ROBOTS = 100_000
MAX_ROUNDS = 100_000
MAX_STEPS = 1_000  # DK-means passes, gossip steps per layer (a round's slots fit the u16 step)
MAX_EPOCHS = 10_000
MAX_WIDTH = 65_536
MAX_SAMPLES = 10_000_000
MAX_ATTEMPTS = 8  # matching shots per gossip step (with MAX_STEPS the slots still fit a u16)
MATCHINGS = ("single", "retry", "oracle")
INIT_SCHEMES = ("torch_default", "kaiming_normal")


def _opt(default: Any, help: str, **rules: Any) -> Any:
    """A dataclass field with a help text and validation rules (min, max, gt, choices)."""
    if isinstance(default, list | dict):
        return field(
            default_factory=lambda: type(default)(default), metadata={"help": help, **rules}
        )
    return field(default=default, metadata={"help": help, **rules})


@dataclass
class ExperimentConfig:
    """What to run and where to write it."""

    name: str = _opt("experiment", "results sub-folder name")
    rounds: int = _opt(20, "communication rounds", min=1, max=MAX_ROUNDS)
    seeds: list[int] = _opt(
        [0], "one run per seed (mean ± std over seeds)", min_len=1, min=0, max=2**32 - 1
    )
    methods: list[str] = _opt(
        ["bilayer"], "methods to run on the same swarm", choices=METHODS, min_len=1
    )
    out_dir: str = _opt("results", "parent folder of results")
    map_rounds: list[int] = _opt([1, -1], "rounds to draw swarm maps of (-1 = last)")
    spectral: str = _opt(
        "auto", "spectral gaps: auto (N <= 200), always, never", choices=("auto", "always", "never")
    )
    threads: int = _opt(
        1,
        "threads for training and evaluation (tiny heads run fastest on 1; 0 = library default)",
        min=0,
    )


@dataclass
class SwarmConfig:
    """The robots and their arena."""

    num_robots: int = _opt(20, "number of robots", min=1, max=MAX_ROBOTS)
    area: list[float] = _opt([100.0, 100.0], "arena width and height", length=2, gt=0)


@dataclass
class MobilityConfig:
    """How robots move between rounds (one round = 1 time unit)."""

    model: str = _opt(
        "random_direction",
        "mobility model",
        choices=("random_direction", "random_waypoint", "static"),
    )
    speed: float = _opt(1.0, "random_direction: distance per round", min=0)
    turn_prob: float = _opt(
        0.05, "random_direction: chance per round to draw a new heading", min=0, max=1
    )
    speed_min: float = _opt(0.5, "random_waypoint: slowest speed", min=0)
    speed_max: float = _opt(1.5, "random_waypoint: fastest speed", min=0)
    pause: float = _opt(0.0, "random_waypoint: rounds to wait at a waypoint", min=0)


@dataclass
class ChannelConfig:
    """Who hears whom."""

    model: str = _opt("unit_disk", "link model", choices=("unit_disk", "log_distance"))
    comm_range: float = _opt(60.0, "unit_disk: range; log_distance: range at 50 % reception", gt=0)
    loss_prob: float = _opt(0.0, "independent loss probability per delivery", min=0, max=1)
    exponent: float = _opt(3.0, "log_distance: path-loss exponent", gt=0)
    shadowing_db: float = _opt(4.0, "log_distance: shadowing standard deviation in dB", gt=0)
    max_range: float = _opt(0.0, "log_distance: hard cut-off (0 = 2 x comm_range)", min=0)


@dataclass
class ClusteringConfig:
    """Distributed k-means (DK-means)."""

    passes: int = _opt(5, "DK-means passes per round", min=1, max=MAX_STEPS)
    head_prob: float = _opt(0.2, "chance to start as a cluster head in round 1", min=0, max=1)
    min_cluster_size: int = _opt(
        3, "heads with <= this many neighbours or members step down", min=0
    )
    criterion: str = _opt(
        "geographic", "distance used to join and re-centre", choices=("geographic", "emd", "mixed")
    )
    mix_weight: float = _opt(
        0.5, "mixed: weight of geography (rest: label distribution)", min=0, max=1
    )
    election: str = _opt(
        "local_max",
        "who self-promotes to head with no head in range: paper (everyone with more than "
        "min_cluster_size neighbours) or local_max (only one with more than min_cluster_size "
        "neighbours in no cluster whose head they hear, and more neighbours than each of them, "
        "ties won by the lower id)",
        choices=("paper", "local_max"),
    )
    beacon_memory: int = _opt(
        5,
        "passes in a row a neighbour's beacon may be missed before it leaves the neighbour table "
        "(its last beacon stands in; 0 = decide on the beacons heard in each pass only)",
        min=0,
        max=MAX_STEPS,
    )
    unclustered_gossip: bool = _opt(
        True,
        "robots in no cluster gossip with each other on the intra-cluster layer (false: they "
        "keep their own model until they join a cluster)",
    )


@dataclass
class GossipConfig:
    """Bilayer gossip and its exchange mode."""

    mode: str = _opt(
        "pairwise", "pairwise push-pull or one-to-many broadcast", choices=("pairwise", "broadcast")
    )
    intra_steps: int = _opt(2, "G_intra: gossip steps inside each cluster", min=0, max=MAX_STEPS)
    inter_steps: int = _opt(1, "G_inter: gossip steps between clusters", min=0, max=MAX_STEPS)
    inter_peers: str = _opt(
        "heads",
        "who gossips between clusters: heads (the paper's text), or any robot with a robot of "
        "another cluster in range (any, as the authors' code; border is the older name of any)",
        choices=("heads", "any", "border"),
    )
    window: str = _opt(
        "step",
        "merge window: step (each gossip step averages, the next starts from that average) or "
        "round (the authors' code: one window per layer spans all its steps, the post-training "
        "models are exchanged in every step and each distinct sender is merged once)",
        choices=("step", "round"),
    )
    window_start: str = _opt(
        "trained",
        "the robot's own term in its merge window: trained (its model after this round's local "
        "training) or before_training (the model it held before training, as one version of the "
        "authors' code: its own training then reaches it only through its neighbours' models)",
        choices=("trained", "before_training"),
    )
    handoff: str = _opt(
        "adopt",
        "what members do with their head's model after inter gossip",
        choices=("adopt", "merge", "none"),
    )
    propose_prob: float = _opt(
        0.5, "pairwise: chance a robot proposes rather than listens", gt=0, max=1
    )
    matching: str = _opt(
        "retry",
        "pairwise: how partners are matched in a gossip step: single (one propose/accept/reply "
        "shot), retry (match_attempts shots per step; robots still unmatched say so and propose "
        "again to partners that did: a randomized maximal matching by messages; each shot is 3 "
        "more gossip phases on a ROS clock) or oracle (simulator only: a central random maximal "
        "matching over the in-range partners, the upper bound; robots on ROS refuse it)",
        choices=MATCHINGS,
    )
    match_attempts: int = _opt(
        4, "pairwise, matching retry: propose/accept/reply shots per gossip step", min=1,
        max=MAX_ATTEMPTS,
    )  # fmt: skip
    repeat_loss: float = _opt(
        0.15,
        "send every frame but beacons twice (proposals, models, hand-offs, hand-overs) in a round "
        "in which this robot lost more than this share of its neighbours' beacons so far: a "
        "beacon missed counts once the neighbour is heard again (through "
        "clustering.beacon_memory: with 0 nothing counts), so neighbours that left or went down "
        "do not; the receiver drops the copy. 1: never",
        min=0, max=1,
    )  # fmt: skip
    dtype: str = _opt(
        "f32", "model encoding on the wire", choices=("f32", "f16", "int8", "int8_block")
    )


@dataclass
class LearningConfig:
    """The classifier head and local training."""

    head: str = _opt("mlp", "head: linear d->C or mlp d->hidden->C", choices=("linear", "mlp"))
    hidden: list[int] = _opt([128, 64], "mlp hidden widths", min=1, max=MAX_WIDTH)
    lr: float = _opt(1e-3, "learning rate", gt=0)
    weight_decay: float = _opt(1e-5, "L2 weight decay", min=0)
    epochs: int = _opt(2, "local epochs per round", min=0, max=MAX_EPOCHS)
    batch_size: int = _opt(128, "minibatch size", min=1, max=MAX_SAMPLES)
    optimizer: str = _opt("adam", "fresh optimiser each round", choices=("adam", "sgd"))
    trainer: str = _opt(
        "numpy",
        "training engine: numpy (no torch; the simulator trains all robots in one batched call) "
        "or torch; both draw the same minibatches and agree to float32 rounding",
        choices=("numpy", "torch"),
    )
    init: str = _opt(
        "shared",
        "initial head: one fleet-wide seed, or one per robot",
        choices=("shared", "per_robot"),
    )
    init_seed: int | str = _opt(
        "auto",
        "seed of the initial head: auto (the experiment seed, so every seed also draws its own "
        "head; all robots of a swarm still share it) or an integer (the same head for every "
        "experiment seed)",
        min=0, max=2**32 - 1, words=("auto",),
    )  # fmt: skip
    init_scheme: str = _opt(
        "torch_default",
        "initial weights: torch_default (PyTorch's nn.Linear: weight and bias ~ "
        "U(+-1/sqrt(fan_in))) or kaiming_normal (weight ~ N(0, 2/fan_in), bias 0)",
        choices=INIT_SCHEMES,
    )


@dataclass
class DataConfig:
    """Dataset, partition and evaluation."""

    dataset: str = _opt("digits", "digits, synthetic, npz, cifar10-mcunet or a registered dataset")
    params: dict[str, Any] = _opt({}, "dataset-specific parameters")
    partition: str = _opt("iid", "split across robots", choices=("iid", "dirichlet"))
    alpha: float = _opt(0.5, "dirichlet concentration (smaller = more skewed)", gt=0)
    min_partition_size: int = _opt(1, "smallest allowed partition", min=1)
    standardize: str = _opt(
        "none",
        "feature standardisation: none, global (train statistics), local (per robot)",
        choices=("none", "global", "local"),
    )
    eval_subset: int = _opt(
        0, "evaluate on this many random test samples (0 = all)", min=0, max=MAX_SAMPLES
    )


@dataclass
class TimingConfig:
    """Phase lengths in seconds when rounds run on a clock (ROS nodes); unused in-process."""

    cluster_phase_s: float = _opt(0.3, "each DK-means beacon/assign phase", gt=0)
    train_phase_s: float = _opt(3.0, "local training", gt=0)
    gossip_phase_s: float = _opt(0.5, "each gossip sub-phase", gt=0)
    end_phase_s: float = _opt(0.5, "end of round (status, evaluation)", gt=0)
    clock_sync_max_s: float = _opt(
        1.0,
        "separate computers: a robot moves its clock forward to the phase of a frame heard from "
        "a robot whose clock runs ahead, by at most this many seconds at a time (0 = off: "
        "every robot keeps its own clock)",
        min=0,
    )


ATTACKS = (
    "none", "head_hijack", "handover", "fake_head", "dominate", "overflow", "impersonate",
    "propose_flood", "foreign_fleet", "head_forge", "handover_forge", "dominate_cap", "near_bound",
    "accept_forge", "insider", "insider_near", "insider_forge",
)  # fmt: skip


@dataclass
class DefenceConfig:
    """What a robot refuses, and how hard a merged model may pull (see docs/robustness.md)."""

    checks: bool = _opt(
        True,
        "protocol checks that need no key: head models and hand-overs only from the known head, "
        "models and proposals only from robots in the neighbour table, sample counts bounded, "
        "one proposal per sender and step (false = the unchecked protocol, for comparisons)",
    )
    max_samples: int = _opt(
        1_000_000, "refuse models whose sender claims more training samples", min=1
    )
    max_rms: float = _opt(
        1000.0, "refuse models whose root-mean-square weight is over this (0 = off)", min=0
    )
    norm_ratio: float = _opt(
        3.0,
        "refuse a model (merged or adopted) whose norm is over this multiple of the robot's own "
        "model's norm (norm_ratio; 0 = off)",
        min=0,
    )
    samples_ratio: float = _opt(
        4.0,
        "a merged model weighs at most this multiple of the median sample count declared in "
        "this round's beacons, the robot's own included (0 = off)",
        min=0,
    )
    dist_ratio: float = _opt(
        1.0,
        "refuse a model (merged or adopted) farther from the robot's own model than this "
        "multiple of the larger of the two norms (dist_ratio; 0 = off; only with learning.init: "
        "shared, since robots starting from their own random heads are about 1.4 norms apart)",
        min=0,
    )
    dist_median: float = _opt(
        0.0,
        "pull a model (merged or adopted) farther from the robot's own model than this multiple "
        "of the median distance the robot's own training moved its model in its last 5 rounds "
        "(in own-model norms) onto that sphere before it is weighted (0 = off)",
        min=0,
    )
    clip_ratio: float = _opt(
        0.0,
        "clip a merged model's distance from the own model to this multiple of max(own model "
        "norm, 1) before it is weighted (0 = off)",
        min=0,
    )
    fleet_key: str = _opt(
        "",
        "where the shared fleet secret is: file:PATH (a file; `gossip-learning keys new PATH` "
        "writes a random one) or env:NAME (an environment variable), never the secret itself; "
        "set: every frame is authenticated (wire version 3), frames without a valid tag are "
        "refused; empty: version-1 frames",
        secret=True,
    )
    identity: str = _opt(
        "auto",
        "who may speak for a robot: none (version-1 frames), fleet_key (any holder of "
        "defence.fleet_key), robot_keys (each robot signs with its own Ed25519 key, wire version "
        "4: defence.keyring, defence.robot_keys); auto: robot_keys if a keyring is set, else "
        "fleet_key if a fleet key is, else none",
        choices=("auto", "none", "fleet_key", "robot_keys"),
    )
    keyring: str = _opt(
        "",
        "robot_keys: the fleet's keyring (robot id -> Ed25519 public key and epoch), file:PATH "
        "(`gossip-learning keys robots DIR` writes DIR/keyring.json)",
    )
    robot_keys: str = _opt(
        "",
        "robot_keys: this process's private keys: file:PATH (a key file, or a folder of "
        "robot_<id>.key, mode 0600) or env:NAME (one PEM key), never a key itself",
        secret=True,
    )
    fleet_id: int = _opt(0, "fleet/experiment id carried by authenticated frames", min=0,
                         max=2**32 - 1)  # fmt: skip
    replay_window: int = _opt(
        64, "authenticated frames: how far behind a sender's newest counter a frame may be",
        min=1, max=4096,
    )  # fmt: skip
    max_speed: float = _opt(
        10.0,
        "ROS robots: refuse a beacon whose pose its sender could not have reached since its last "
        "accepted beacon at this speed in m/s (implausible_pose; 0 = off)",
        min=0,
    )
    pose_slack: float = _opt(
        5.0, "metres of pose noise allowed on top of max_speed (odometry drift, jitter)", min=0
    )


@dataclass
class FaultsConfig:
    """Faults the simulator injects (seeded from the run's seed; all off by default)."""

    crash_prob: float = _opt(0.0, "chance per round that a running robot crashes", min=0, max=1)
    crash_rounds: int = _opt(3, "rounds a crashed robot stays down before it rejoins", min=1,
                             max=MAX_ROUNDS)  # fmt: skip
    rejoin: str = _opt(
        "keep", "a rejoining robot keeps its model or restarts from the initial head",
        choices=("keep", "reset"),
    )  # fmt: skip
    offline_fraction: float = _opt(
        0.0, "fraction of the running robots switched off for one round, drawn each round",
        min=0, max=1,
    )  # fmt: skip
    partition_rounds: list[int] = _opt(
        [], "[first, last] rounds the arena is cut into a left and a right half (empty = never)",
        min=1, max=MAX_ROUNDS,
    )  # fmt: skip
    burst_enter: float = _opt(
        0.0, "Gilbert-Elliott burst loss: chance per phase a link goes bad (0 = off)", min=0, max=1
    )
    burst_leave: float = _opt(0.3, "Gilbert-Elliott: chance per phase a bad link recovers",
                              gt=0, max=1)  # fmt: skip
    burst_loss: float = _opt(1.0, "Gilbert-Elliott: loss probability on a bad link", min=0,
                             max=1)  # fmt: skip
    rogues: int = _opt(0, "rogue radios placed among the robots", min=0, max=1000)
    rogue_attack: str = _opt("none", "what the rogues do", choices=ATTACKS)


@dataclass
class Config:
    """A whole experiment."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    swarm: SwarmConfig = field(default_factory=SwarmConfig)
    mobility: MobilityConfig = field(default_factory=MobilityConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    data: DataConfig = field(default_factory=DataConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    defence: DefenceConfig = field(default_factory=DefenceConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what a YAML snapshot holds)."""
        return dataclasses.asdict(self)


def _unknown(key: str, name: str, allowed: list[str]) -> ConfigError:
    near = difflib.get_close_matches(name, allowed, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return ConfigError(key, f"unknown key{hint}; allowed: {', '.join(allowed)}")


def _check_scalar(key: str, value: Any, typ: Any, meta: dict[str, Any]) -> Any:
    if meta.get("secret") and not isinstance(value, str):  # never echo what may be a secret
        raise ConfigError(key, "expected file:PATH or env:NAME")
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true/false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"expected a number, got {value!r}")
        value = float(value)
    elif typ is str and not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {value!r}")
    if typ is float and not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(key, f"{value!r} is not allowed; allowed: {', '.join(meta['choices'])}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(key, f"must be >= {meta['min']}, got {value!r}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(key, f"must be > {meta['gt']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(key, f"must be <= {meta['max']}, got {value!r}")
    return value


def _check_value(key: str, value: Any, typ: Any, meta: dict[str, Any]) -> Any:
    origin = typing.get_origin(typ)
    if origin is list:
        (item_type,) = typing.get_args(typ)
        if not isinstance(value, list):
            raise ConfigError(key, f"expected a list, got {value!r}")
        if "length" in meta and len(value) != meta["length"]:
            raise ConfigError(key, f"expected {meta['length']} items, got {len(value)}")
        if "min_len" in meta and len(value) < meta["min_len"]:
            raise ConfigError(key, f"expected at least {meta['min_len']} item(s)")
        return [_check_scalar(f"{key}[{i}]", v, item_type, meta) for i, v in enumerate(value)]
    if origin is dict or typ is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(typ, types.UnionType):
        if set(typing.get_args(typ)) != {int, str} or "words" not in meta:
            raise TypeError(f"unsupported config type {typ}")
        if isinstance(value, str):
            if value not in meta["words"]:
                words = " or ".join(repr(w) for w in meta["words"])
                raise ConfigError(key, f"expected an integer or {words}, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            words = " or ".join(repr(w) for w in meta["words"])
            raise ConfigError(key, f"expected an integer or {words}, got {value!r}")
        return _check_scalar(key, value, int, meta)
    return _check_scalar(key, value, typ, meta)


def _build_section(section: str, cls: type, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(section, f"expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"{section}.{name}"
        if name not in fields:
            raise _unknown(key, str(name), list(fields))
        values[name] = _check_value(key, value, hints[name], dict(fields[name].metadata))
    return cls(**values)


def _known_datasets() -> list[str]:
    from gossip_learning.datasets import available_datasets  # numpy only, no torch

    return sorted({*DATASETS, *available_datasets()})


#: What ``cifar10-mcunet`` (registered once :mod:`gossip_learning.vision`, which needs torch, is
#: imported) accepts in ``data.params``; a test keeps it equal to the loader's signature.
CIFAR_PARAMS = (
    "source", "model_dir", "cache_dir", "limit_per_class", "batch_size", "progress", "threads",
    "backbone_file",
)  # fmt: skip
#: Deepest nesting of mappings and lists a config may have (``data.params`` included).
MAX_DEPTH = 32


def _check_param_names(dataset: str, params: dict[str, Any]) -> None:
    """Unknown ``data.params`` keys are refused before any data is loaded (a loader taking
    ``**kwargs`` accepts any)."""
    import inspect

    from gossip_learning.datasets import loader_of  # numpy only, no torch

    loader = loader_of(dataset)
    if loader is None:
        accepted: tuple[str, ...] | None = CIFAR_PARAMS if dataset == "cifar10-mcunet" else None
    else:
        try:
            sig = inspect.signature(loader).parameters.values()
        except (TypeError, ValueError):
            return
        if any(p.kind is p.VAR_KEYWORD for p in sig):
            return
        accepted = tuple(p.name for p in sig if p.kind is not p.VAR_POSITIONAL)
    if accepted is None:
        return
    for name in params:
        if name not in accepted:
            raise _unknown(f"data.params.{name}", str(name), list(accepted) or ["(none)"])


def _check_params(params: dict[str, Any], key: str = "data.params") -> None:
    for name, value in params.items():
        sub = f"{key}.{name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(sub, f"must be a finite number, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAMPLES:
            raise ConfigError(sub, f"must be at most {MAX_SAMPLES} in size, got {value!r}")
        if isinstance(value, dict):
            _check_params(value, sub)


def _cross_checks(cfg: Config) -> None:
    known = _known_datasets()
    if cfg.data.dataset not in known:
        raise ConfigError(
            "data.dataset", f"unknown dataset {cfg.data.dataset!r}; allowed: {', '.join(known)}"
        )
    _check_params(cfg.data.params)
    _check_param_names(cfg.data.dataset, cfg.data.params)
    if cfg.mobility.speed_min > cfg.mobility.speed_max:
        raise ConfigError("mobility.speed_min", "must be <= mobility.speed_max")
    if cfg.data.dataset == "npz" and "path" not in cfg.data.params:
        raise ConfigError("data.params.path", "dataset 'npz' needs a path to the .npz file")
    if not cfg.learning.hidden and cfg.learning.head == "mlp":
        raise ConfigError("learning.hidden", "an mlp head needs at least one hidden width")
    n = cfg.experiment.rounds
    part = cfg.faults.partition_rounds
    if part and (len(part) != 2 or part[0] > part[1]):
        raise ConfigError("faults.partition_rounds", f"expected [first, last], got {part}")
    from gossip_learning.identity import check  # keys there and strong; none is kept

    check(cfg)
    if cfg.faults.rogues and cfg.faults.rogue_attack == "none":
        raise ConfigError("faults.rogue_attack", "rogues are set: name what they do")
    for i, r in enumerate(cfg.experiment.map_rounds):
        if r == 0 or r > n or r < -n:
            raise ConfigError(
                f"experiment.map_rounds[{i}]", f"round {r} is outside 1..{n} (or -1 = last)"
            )


def config_from_dict(raw: Any) -> Config:
    """Validate a nested mapping and build a :class:`Config`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("<root>", "a config must be a mapping of sections")
    sections = {f.name: f for f in dataclasses.fields(Config)}
    hints = typing.get_type_hints(Config)
    built: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in sections:
            raise _unknown(str(name), str(name), list(sections))
        built[name] = _build_section(name, hints[name], value)
    cfg = Config(**built)
    _cross_checks(cfg)
    return cfg


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into a key path and a YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(text, "an override must look like section.key=value")
    key, _, value = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if len(path) < 2:
        raise ConfigError(
            key, "an override key needs a section and a key, e.g. channel.comm_range=30"
        )
    parsed = _parse_yaml(value, key.strip(), f"value {value[:80]!r}") if value.strip() else ""
    return path, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with ``key=value`` overrides applied."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(raw)) if raw else {}
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(path), f"'{part}' is not a section")
            node = child
        node[path[-1]] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key written twice in one mapping, aliases (``*name``:
    a few lines of them expand to billions of nodes) and nesting deeper than :data:`MAX_DEPTH`
    (which would otherwise end in a RecursionError)."""

    where = "<file>"
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                self.where,
                f"YAML alias *{event.anchor} (line {line}) is not allowed: write the value out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(
                    self.where, f"nested deeper than {MAX_DEPTH} levels (line {line})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _parse_yaml(text: str, where: str, what: str) -> Any:
    """YAML ``text`` (``what``, for messages) through :class:`_StrictLoader`; errors name the
    config key ``where``."""
    loader = _StrictLoader(text)
    loader.where = where
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(where, f"{what} is not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            mark = key_node.start_mark
            raise ConfigError(
                str(key), f"written twice in one mapping (line {mark.line + 1}): keep one"
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_without_duplicates,
)


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read a YAML file into a dict, with clear errors for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("<file>", f"config file {str(p)!r} does not exist")
    raw = _parse_yaml(p.read_text(encoding="utf-8"), "<file>", str(p))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("<root>", f"{p} must hold a mapping of sections")
    return raw


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load, override and validate a config; ``path=None`` starts from the defaults."""
    raw = load_raw(path) if path is not None else {}
    return config_from_dict(apply_overrides(raw, overrides or []))


def dump_config(cfg: Config) -> str:
    """YAML text of a resolved config, every default explicit."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def describe() -> str:
    """Human-readable list of every key with its default and help."""
    lines = []
    for sec in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[sec.name]
        lines.append(f"{sec.name}:")
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            extra = f" [{', '.join(f.metadata['choices'])}]" if "choices" in f.metadata else ""
            lines.append(f"  {f.name}: {default!r}  # {f.metadata.get('help', '')}{extra}")
    return "\n".join(lines)
