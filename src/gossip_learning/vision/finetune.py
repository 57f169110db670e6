"""Fine-tune MCUNet-in3 on CIFAR-10's training split, cache it, and use it for features.

The authors' checkpoint appears CIFAR-trained (whether they fine-tuned it themselves is an
inference from their absolute accuracies, not something their paper states). This module
trains the last ``train_blocks`` inverted-residual blocks of the ImageNet MCUNet-in3 with a
linear 160 → 10 head on CIFAR-10 training images; everything before those blocks stays frozen
(batch norm keeps its statistics everywhere, so training and extraction see one network).
The schedule is small enough for two CPU cores (fewer pixels, a subset, one epoch); a GPU is
used when torch sees one.

The result is one ``.pt`` (the backbone's state dict) and a ``.json`` beside it with its
sha256, the schedule, what was measured (time, losses, the head's accuracy on test images) and
where it came from (commit, machine). The file name is a hash of everything that determines it,
so a second call finds it (:func:`finetune_cached`). :func:`load_finetuned` checks the sha256
and returns a :class:`Backbone` whose ``weights_id`` names it: feature caches of it never mix
with the ImageNet backbone's (``data.params.backbone_file``, ``gossip-learning features
--backbone-file``).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import ConfigError, DataError
from ._paths import cache_root, sha256_file
from .backbone import Backbone, build_backbone, load_backbone, mcunet_in3_config
from .cifar import LAYOUTS_HELP, CifarSource, open_cifar10
from .features import log_to_stderr
from .preprocess import preprocess

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class Schedule:
    """What is trained, on what, for how long (every field is part of the cache key)."""

    train_blocks: int = 2
    resolution: int = 96
    limit_per_class: int | None = 500
    epochs: int = 1
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    seed: int = 0

    def check(self, num_blocks: int) -> None:
        """ConfigError naming the option before any work."""
        ints = {"train-blocks": self.train_blocks, "resolution": self.resolution,
                "epochs": self.epochs, "batch-size": self.batch_size}  # fmt: skip
        for name, value in ints.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name}", f"must be a positive integer, got {value!r}")
        if self.train_blocks > num_blocks:
            raise ConfigError("--train-blocks", f"the backbone has {num_blocks} blocks")
        if self.resolution < 32:
            raise ConfigError("--resolution", f"must be at least 32 pixels, got {self.resolution}")
        if self.limit_per_class is not None and self.limit_per_class < 1:
            raise ConfigError("--limit-per-class", "must be a positive integer or omitted")
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ConfigError("--lr", f"lr must be > 0 and weight decay >= 0, got {self.lr}")


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: the GPU when torch sees one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device", f"{name} asked for, but torch sees no GPU")
    return torch.device(name)


def finetune_backbone(
    backbone: Backbone,
    images: np.ndarray,
    labels: np.ndarray,
    schedule: Schedule,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> tuple[Backbone, nn.Module, dict[str, Any]]:
    """Train the last ``schedule.train_blocks`` blocks and a linear head on uint8 ``images``
    (N, H, W, 3); returns the new backbone (frozen, eval mode, on the CPU), the head and stats."""
    from tqdm import tqdm

    net = copy.deepcopy(backbone.module)
    blocks = cast(nn.ModuleList, net.blocks)
    schedule.check(len(blocks))
    if len(images) != len(labels) or len(images) == 0:
        raise DataError(f"need as many labels as images, got {len(images)} and {len(labels)}")
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(schedule.seed)
        head = nn.Linear(backbone.feature_dim, int(labels.max()) + 1)
    trained = blocks[len(blocks) - schedule.train_blocks :]
    # Eval mode throughout: batch norm keeps its statistics (small batches on a subset would
    # estimate them badly), so training and feature extraction see the same network.
    net.eval().requires_grad_(False)
    trained.requires_grad_(True)
    net.to(dev)
    head.to(dev)
    params = [*trained.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(schedule.seed)
    steps_per_epoch = -(-len(images) // schedule.batch_size)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(total=schedule.epochs * len(images), desc="finetune", unit="img",
               disable=not progress)  # fmt: skip
    with bar:
        for _ in range(schedule.epochs):
            order = torch.randperm(len(images), generator=gen).numpy()
            for start in range(0, len(images), schedule.batch_size):
                idx = np.sort(order[start : start + schedule.batch_size])
                x = preprocess(images[idx], schedule.resolution, backbone.channels_last).to(dev)
                loss = nn.functional.cross_entropy(head(net(x)), y_all[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.item()))
                bar.update(len(idx))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - t0
    net.eval().requires_grad_(False)
    head.eval().requires_grad_(False)
    first = losses[: max(1, steps_per_epoch // 10)]
    last = losses[-max(1, steps_per_epoch // 10) :]
    stats = {
        "images": len(images),
        "steps": len(losses),
        "seconds": seconds,
        "images_per_second": schedule.epochs * len(images) / max(seconds, 1e-9),
        "train_loss_first": float(np.mean(first)),
        "train_loss_last": float(np.mean(last)),
        "device": str(dev),
        "torch_threads": torch.get_num_threads(),
    }
    out = Backbone(net.cpu(), "finetuned-unsaved", schedule.resolution, backbone.feature_dim,
                   backbone.channels_last)  # fmt: skip
    return out, head.cpu(), stats


def head_accuracy(
    backbone: Backbone, head: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 64
) -> float:
    """Accuracy of ``head`` on ``backbone``'s features of ``images``."""
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = preprocess(images[start : start + batch], backbone.resolution,
                           backbone.channels_last)  # fmt: skip
            pred = head(backbone.module(x)).argmax(1).numpy()
            correct += int((pred == labels[start : start + batch]).sum())
    return correct / max(len(images), 1)


def save_finetuned(path: Path, backbone: Backbone, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the state dict atomically and its ``.json`` (meta + sha256); returns the json."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": backbone.module.state_dict(), "format": FORMAT}, tmp)
    record = {**meta, "file": path.name, "sha256": sha256_file(path),
              "resolution": backbone.resolution}  # fmt: skip
    with atomic_path(path.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


def load_finetuned(path: str | Path, channels_last: bool = True) -> Backbone:
    """A fine-tuned backbone written by :func:`save_finetuned`, its sha256 checked."""
    path = Path(path).expanduser()
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise DataError(
            f"no fine-tuned backbone at {path} (with {sidecar.name} beside it): run "
            "`gossip-learning finetune` (config key data.params.backbone_file)"
        )
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    actual = sha256_file(path)
    if actual != record.get("sha256"):
        want = record.get("sha256")
        raise DataError(f"{path} has sha256 {actual}, its {sidecar.name} says {want}")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    bb = build_backbone(weights_id=f"finetuned-{actual}", channels_last=channels_last)
    try:
        bb.module.load_state_dict(state)  # the backbone without its classifier, as saved
    except RuntimeError as exc:
        raise DataError(f"{path} does not fit MCUNet-in3: {exc}") from exc
    bb.resolution = int(record["resolution"])
    return bb


def schedule_key(base_weights: str, data_fingerprint: str, schedule: Schedule) -> str:
    """Hex sha256 over everything that determines the fine-tuned weights."""
    parts = {"format": FORMAT, "base": base_weights, "data": data_fingerprint,
             "schedule": asdict(schedule)}  # fmt: skip
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def finetune_cached(
    source: CifarSource,
    schedule: Schedule,
    out_dir: Path,
    base: Backbone,
    device: torch.device,
    eval_per_class: int = 100,
    progress: bool = True,
    command: Sequence[str] = (),
) -> tuple[Path, dict[str, Any], bool]:
    """The cached fine-tuned backbone for this schedule, trained first when missing;
    returns its path, its record and whether it was found."""
    from ..provenance import run_info

    key = schedule_key(base.weights_id, source.fingerprint(), schedule)
    path = out_dir / f"mcunet-in3-ft-{key[:16]}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if record.get("key") == key and sha256_file(path) == record.get("sha256"):
            return path, record, True
        log.warning("%s does not match its record; training again", path)
    info = run_info(list(command))
    raw = source.read(schedule.limit_per_class)
    tuned, head, stats = finetune_backbone(base, raw.x_train, raw.y_train, schedule, device,
                                           progress)  # fmt: skip
    keep = np.concatenate([np.flatnonzero(raw.y_test == c)[:eval_per_class]
                           for c in np.unique(raw.y_test)])  # fmt: skip
    acc = head_accuracy(tuned, head, raw.x_test[keep], raw.y_test[keep])
    meta = {"key": key, "schedule": asdict(schedule), "base_weights_sha256": base.weights_id,
            "source": source.describe(), "data_fingerprint": source.fingerprint(),
            "measured": {**stats, "head_test_accuracy": acc, "test_images": len(keep)},
            "run_info": info}  # fmt: skip
    return path, save_finetuned(path, tuned, meta), False


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``gossip-learning finetune``: fine-tune MCUNet-in3 on CIFAR-10 (cached)."""
    from .features import default_source

    d = Schedule()
    p = argparse.ArgumentParser(prog="gossip-learning finetune", description=main.__doc__)
    p.add_argument("--source", help="CIFAR-10 source: " + LAYOUTS_HELP)
    p.add_argument("--model-dir", help="folder with the ImageNet MCUNet-in3 .json and .pth")
    p.add_argument("--out-dir", help="where to cache it (default <cache>/models/finetuned)")
    p.add_argument("--train-blocks", type=int, default=d.train_blocks,
                   help="last blocks trained (the rest is frozen)")  # fmt: skip
    p.add_argument("--resolution", type=int, default=d.resolution, help="input pixels")
    p.add_argument("--limit-per-class", type=int, default=d.limit_per_class,
                   help="training images per class (0: all 5000)")  # fmt: skip
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--eval-per-class", type=int, default=100, help="test images per class")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--json", help="also write the record here (e.g. docs/results/finetune.json)")
    a = p.parse_args(argv)
    log_to_stderr()
    limit = a.limit_per_class or None
    schedule = Schedule(a.train_blocks, a.resolution, limit, a.epochs, a.batch_size, a.lr,
                        d.weight_decay, a.seed)  # fmt: skip
    try:
        schedule.check(len(mcunet_in3_config()["blocks"]))
        device = pick_device(a.device)
        if a.threads is not None:
            torch.set_num_threads(a.threads)
        root = cache_root()
        src = open_cifar10(a.source) if a.source else default_source(root / "datasets/cifar10")
        out = Path(a.out_dir).expanduser() if a.out_dir else root / "models" / "finetuned"
        command = ["gossip-learning", "finetune", *(argv or [])]
        from ..provenance import refuse_dirty, run_info

        refuse_dirty(run_info(command), a.json)
        path, record, hit = finetune_cached(src, schedule, out, load_backbone(a.model_dir),
                                            device, a.eval_per_class, not a.no_progress,
                                            command)  # fmt: skip
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}")
        return 2
    m = record["measured"]
    print(f"{'cache hit' if hit else 'fine-tuned'}: {path} (sha256 {record['sha256']})")
    print(
        f"{m['images']} images x {schedule.epochs} epoch(s) in {m['seconds']:.1f} s on "
        f"{m['device']} ({m['images_per_second']:.1f} images/s); train loss "
        f"{m['train_loss_first']:.3f} -> {m['train_loss_last']:.3f}; linear head on "
        f"{m['test_images']} test images: {m['head_test_accuracy']:.3f}"
    )
    print(f"use it: data.params.backbone_file={path}")
    if a.json:
        with atomic_path(Path(a.json)) as tmp:
            Path(tmp).write_text(json.dumps({**record, "cache_hit": hit}, indent=2,
                                            sort_keys=True) + "\n", encoding="utf-8")  # fmt: skip
    return 0
