"""Command line: ``gossip-learning run | compare | validate | config | partition | reproduce |
sweep | features | finetune``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gossip_learning import __version__
from gossip_learning.config import describe, dump_config, load_config
from gossip_learning.errors import GossipLearningError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gossip-learning",
        description="Decentralised learning on robot swarms: DK-means clusters, bilayer gossip.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a swarm experiment from a YAML config")
    run.add_argument("config", help="YAML config (see config/)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set channel.comm_range=30 (repeatable)",
    )
    run.add_argument("--out", help="results folder (default: <out_dir>/<name>-<timestamp>)")
    run.add_argument("-q", "--quiet", action="store_true", help="no per-round progress")

    cmp_ = sub.add_parser("compare", help="put several results folders on one plot and table")
    cmp_.add_argument("results", nargs="+", help="results folders (each holds metrics.csv)")
    cmp_.add_argument("--out", default="results/compare", help="where to write compare.png/.md")
    cmp_.add_argument("--metric", default="acc_mean", help="metric to plot (default acc_mean)")

    val = sub.add_parser(
        "validate", help="check a config and print it with every default filled in"
    )
    val.add_argument("config")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("config", help="list every config key with its default and meaning")
    part = sub.add_parser(
        "partition",
        help="write each robot's data file (robot_<i>.npz) for ROS robots (robot_node data_dir)",
    )
    part.add_argument("config", help="YAML config (the one the robots run)")
    part.add_argument("--out", required=True, help="folder for robot_<i>.npz")
    part.add_argument("--seed", type=int, default=0, help="experiment seed (default 0)")
    part.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    keys = sub.add_parser("keys", help="write a fleet secret, or per-robot keys and a keyring")
    keys.add_argument(
        "action", choices=["new", "robots", "rotate"],
        help="new: a fresh fleet secret in PATH (rotate it: --force); robots: a key per robot and "
        "keyring.json in folder PATH; rotate: a new key for --robot in folder PATH",
    )  # fmt: skip
    keys.add_argument("path", help="key file (new) or key folder (robots, rotate)")
    keys.add_argument("--force", action="store_true", help="new: replace an existing key file")
    keys.add_argument("--robots", type=int, default=0, help="robots: ids 0..N-1 get keys")
    keys.add_argument("--fleet-id", type=int, default=0, help="robots: defence.fleet_id")
    keys.add_argument("--robot", type=int, default=-1, help="rotate: the robot's id")
    keys.add_argument("--overlap", action="store_true",
                      help="rotate: keep accepting the old key until the robot is heard with "
                      "the new one")  # fmt: skip
    sub.add_parser(
        "reproduce", help="rerun the paper's experiments (--help for options)", add_help=False
    )
    sub.add_parser(
        "sweep",
        help="a config over a grid of settings and seeds, locally or on Ray (--help)",
        add_help=False,
    )
    sub.add_parser("features", help="extract/cache MCUNet-in3 features of CIFAR-10", add_help=False)
    sub.add_parser(
        "finetune", help="fine-tune MCUNet-in3 on CIFAR-10, cached (--help)", add_help=False
    )
    sub.add_parser(
        "fleet",
        help="rehearse a fleet: each robot a host in its own network namespace (root; --help)",
        add_help=False,
    )
    return p


#: Modules of the ``experiment`` extra (simulator runs, plots, the digits data); a robot's install
#: (``pip install gossip_learning``) leaves them out.
EXPERIMENT_MODULES = ("matplotlib", "sklearn")


def _missing_extra(exc: ModuleNotFoundError, command: str) -> int:
    """A clear error, before any work, for a command run on a robot's install."""
    if (exc.name or "").split(".")[0] not in EXPERIMENT_MODULES:
        raise exc
    print(
        f"error: gossip-learning {command} needs {exc.name}, part of the experiment extra: "
        "pip install 'gossip_learning[experiment]' "
        "(in a checkout: pip install -e '.[experiment]')",
        file=sys.stderr,
    )
    return 2


def _delegate(command: str, rest: list[str]) -> int:
    """Subcommands with their own argument parsers."""
    try:
        if command == "reproduce":
            from gossip_learning.reproduce import main as reproduce_main

            return reproduce_main(rest)
        if command == "sweep":
            from gossip_learning.sweep import main as sweep_main

            return sweep_main(rest)
        if command == "finetune":
            from gossip_learning.vision.finetune import main as finetune_main

            return finetune_main(rest)
        from gossip_learning.vision import extract_features_main

        return extract_features_main(rest)
    except GossipLearningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        return _missing_extra(exc, command)
    except KeyboardInterrupt:
        print("interrupted: finished experiments are in the output folder", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fleet":
        from gossip_learning.fleet.harness import main as fleet_main

        return fleet_main(argv[1:])
    if argv and argv[0] in ("reproduce", "sweep", "features", "finetune"):
        return _delegate(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            from gossip_learning.results import run_experiment

            cfg = load_config(args.config, args.overrides)
            run_experiment(
                cfg, args.out, log=None if args.quiet else print, command=["gossip-learning", *argv]
            )
        elif args.command == "compare":
            from gossip_learning.results import compare

            print(compare(args.results, Path(args.out), args.metric))
            print(f"plot: {Path(args.out) / 'compare.png'}")
        elif args.command == "validate":
            print(dump_config(load_config(args.config, args.overrides)), end="")
        elif args.command == "keys" and args.action == "new":
            from gossip_learning.auth import write_secret

            write_secret(args.path, replace=args.force)
            print(f"wrote a new fleet secret to {args.path} (defence.fleet_key: file:{args.path})")
        elif args.command == "keys":
            from gossip_learning.keyring import keys_command

            print(keys_command(args.action, args.path, args.robots, args.fleet_id, args.robot,
                               args.overlap))  # fmt: skip
        elif args.command == "config":
            print(describe())
        elif args.command == "partition":
            from gossip_learning.robot_data import write_robot_files

            paths = write_robot_files(load_config(args.config, args.overrides), args.seed, args.out)
            print(f"wrote {len(paths)} robot files to {args.out}")
    except GossipLearningError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        return _missing_extra(exc, args.command)
    except KeyboardInterrupt:
        print("interrupted: finished runs are in the results folder", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
