"""Fine-tune MCUNet-in3 on CIFAR-10's training split, cache it, and use it for features.

The authors' checkpoint appears CIFAR-trained (whether they fine-tuned it themselves is an
inference from their absolute accuracies, not something their paper states). This module
trains the last ``train_blocks`` inverted-residual blocks of the ImageNet MCUNet-in3 with a
linear 160 → 10 head on CIFAR-10 training images; everything before those blocks stays frozen
(batch norm keeps its statistics everywhere, so training and extraction see one network).
As nothing before the trained blocks changes and there is no augmentation, their output is
computed once per image and kept in memory (:func:`frozen_activations`); the epochs then run
the trained blocks only, which on two CPU cores costs little beside that one pass. With
``--features`` the same pass also gives every CIFAR-10 image's features through the new backbone
(:func:`tail_features`), cached where ``data.params.backbone_file`` finds them. A GPU is used
when torch sees one.

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

FORMAT = 2  # 2: the frozen prefix runs once; cosine learning-rate decay


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


def split_network(net: nn.Module, train_blocks: int) -> tuple[nn.Module, nn.Module]:
    """``net`` as a frozen prefix (first conv and every block but the last ``train_blocks``) and
    the tail after it (those blocks, global average pooling, the classifier); both share
    ``net``'s modules, and ``tail(prefix(x)) == net(x)``."""
    blocks = cast(nn.ModuleList, net.blocks)
    cut = len(blocks) - train_blocks
    mix: nn.Module | None = getattr(net, "feature_mix_layer", None)
    prefix = nn.Sequential(cast(nn.Module, net.first_conv), *blocks[:cut])
    tail = nn.Sequential(*blocks[cut:], *([mix] if mix is not None else []), _Pool(),
                         cast(nn.Module, net.classifier))  # fmt: skip
    return prefix, tail


class _Pool(nn.Module):
    """Global average pooling as ``ProxylessNASNets.forward`` does it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(3).mean(2)


def frozen_activations(
    prefix: nn.Module,
    images: np.ndarray,
    resolution: int,
    channels_last: bool,
    device: torch.device,
    batch_size: int = 64,
    progress: bool = True,
) -> torch.Tensor:
    """The frozen prefix's output for every image, once (float32, on the CPU): with batch norm
    in eval mode and no augmentation it is the same every epoch, so training runs the tail only."""
    from tqdm import tqdm

    parts = []
    bar = tqdm(total=len(images), desc="frozen blocks", unit="img", disable=not progress)
    with torch.inference_mode(), bar:
        for start in range(0, len(images), batch_size):
            x = preprocess(images[start : start + batch_size], resolution, channels_last)
            parts.append(prefix(x.to(device)).float().cpu().contiguous())
            bar.update(len(x))
    return torch.cat(parts)


def finetune_backbone(
    backbone: Backbone,
    images: np.ndarray,
    labels: np.ndarray,
    schedule: Schedule,
    device: torch.device | str = "cpu",
    progress: bool = True,
    frozen: torch.Tensor | None = None,
) -> tuple[Backbone, nn.Module, dict[str, Any]]:
    """Train the last ``schedule.train_blocks`` blocks and a linear head on uint8 ``images``
    (N, H, W, 3); returns the new backbone (frozen, eval mode, on the CPU), the head and stats.

    The frozen blocks run once per image (:func:`frozen_activations`), not once per epoch;
    ``frozen``: their output for ``images``, when the caller has it already."""
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
    prefix, tail = split_network(net, schedule.train_blocks)
    # Eval mode throughout: batch norm keeps its statistics (small batches on a subset would
    # estimate them badly), so training and feature extraction see the same network.
    net.eval().requires_grad_(False)
    trained = blocks[len(blocks) - schedule.train_blocks :]
    trained.requires_grad_(True)
    net.to(dev)
    head.to(dev)
    t0 = time.perf_counter()
    if frozen is None:
        frozen = frozen_activations(prefix, images, schedule.resolution, backbone.channels_last,
                                    dev, schedule.batch_size, progress)  # fmt: skip
    prefix_seconds = time.perf_counter() - t0
    params = [*trained.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    steps_per_epoch = -(-len(images) // schedule.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, schedule.epochs * steps_per_epoch)
    y_all = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(schedule.seed)
    losses: list[float] = []
    bar = tqdm(total=schedule.epochs * len(images), desc="finetune", unit="img",
               disable=not progress)  # fmt: skip
    with bar:
        for _ in range(schedule.epochs):
            order = torch.randperm(len(images), generator=gen)
            for start in range(0, len(images), schedule.batch_size):
                idx = order[start : start + schedule.batch_size]
                x = frozen[idx].to(dev)
                loss = nn.functional.cross_entropy(head(tail(x)), y_all[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
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
        "train_seconds": seconds - prefix_seconds,
        "images_per_second": schedule.epochs * len(images) / max(seconds - prefix_seconds, 1e-9),
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


def tail_features(tail: nn.Module, frozen: torch.Tensor, batch: int = 256) -> np.ndarray:
    """The backbone's features from the frozen prefix's output (float32, (N, 160))."""
    dev = next(tail.parameters()).device
    with torch.inference_mode():
        parts = [
            tail(frozen[i : i + batch].to(dev)).float().cpu() for i in range(0, len(frozen), batch)
        ]
    return torch.cat(parts).numpy()


def finetune_cached(
    source: CifarSource,
    schedule: Schedule,
    out_dir: Path,
    base: Backbone,
    device: torch.device,
    eval_per_class: int = 100,
    progress: bool = True,
    command: Sequence[str] = (),
    features_dir: Path | None = None,
) -> tuple[Path, dict[str, Any], bool]:
    """The cached fine-tuned backbone for this schedule, trained first when missing;
    returns its path, its record and whether it was found.

    ``features_dir``: also write the features of every CIFAR-10 image through the new backbone
    there (as ``gossip-learning features --backbone-file`` would), from the same pass through
    the frozen blocks; needs the whole training split (``limit_per_class`` None), and the head is
    then scored on the whole test split."""
    from ..provenance import run_info
    from .features import cache_file, cache_key, store_features

    if features_dir is not None and schedule.limit_per_class is not None:
        raise ConfigError("--limit-per-class", "--features needs the whole training split (0)")
    key = schedule_key(base.weights_id, source.fingerprint(), schedule)
    path = out_dir / f"mcunet-in3-ft-{key[:16]}.pt"
    if path.is_file() and path.with_suffix(".json").is_file():
        record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if record.get("key") == key and sha256_file(path) == record.get("sha256"):
            return path, record, True
        log.warning("%s does not match its record; training again", path)
    info = run_info(list(command))
    t0 = time.perf_counter()
    raw = source.read(schedule.limit_per_class)
    if features_dir is None:
        keep = np.concatenate([np.flatnonzero(raw.y_test == c)[:eval_per_class]
                               for c in np.unique(raw.y_test)])  # fmt: skip
    else:
        keep = np.arange(len(raw.y_test))
    dev = torch.device(device)
    prefix, _ = split_network(copy.deepcopy(base.module).to(dev), schedule.train_blocks)
    t1 = time.perf_counter()
    frozen = [frozen_activations(prefix, x, schedule.resolution, base.channels_last, dev,
                                 schedule.batch_size, progress)
              for x in (raw.x_train, raw.x_test[keep])]  # fmt: skip
    frozen_seconds = time.perf_counter() - t1
    tuned, head, stats = finetune_backbone(base, raw.x_train, raw.y_train, schedule, dev,
                                           progress, frozen[0])  # fmt: skip
    _, tail = split_network(tuned.module, schedule.train_blocks)
    x_test = tail_features(tail, frozen[1])
    with torch.inference_mode():
        pred = head(torch.as_tensor(x_test)).argmax(1).numpy()
    acc = float((pred == raw.y_test[keep]).mean())
    stats = {**stats, "frozen_pass_seconds": frozen_seconds,
             "frozen_pass_images": len(raw.x_train) + len(keep),
             "frozen_pass_images_per_second": (len(raw.x_train) + len(keep)) / frozen_seconds,
             "head_test_accuracy": acc, "test_images": len(keep)}  # fmt: skip
    meta = {"key": key, "schedule": asdict(schedule), "base_weights_sha256": base.weights_id,
            "source": source.describe(), "data_fingerprint": source.fingerprint(),
            "measured": stats, "run_info": info}  # fmt: skip
    x_train = tail_features(tail, frozen[0]) if features_dir is not None else None
    stats["total_seconds"] = time.perf_counter() - t0  # reading, both passes, training
    record = save_finetuned(path, tuned, meta)
    if x_train is not None and features_dir is not None:
        weights_id = f"finetuned-{record['sha256']}"
        fkey = cache_key(weights_id, source.fingerprint(), None, schedule.resolution)
        arrays = {"X_train": x_train, "y_train": raw.y_train, "X_test": x_test,
                  "y_test": raw.y_test}  # fmt: skip
        store_features(cache_file(features_dir, fkey), fkey, source, weights_id, None,
                       schedule.resolution, arrays)  # fmt: skip
    return path, record, False


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
    p.add_argument("--features", action="store_true",
                   help="also cache every CIFAR-10 image's features through the new backbone "
                   "(what data.params.backbone_file reads) from the same frozen pass; needs "
                   "--limit-per-class 0")  # fmt: skip
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
        fdir = root / "features" if a.features else None
        path, record, hit = finetune_cached(src, schedule, out, load_backbone(a.model_dir),
                                            device, a.eval_per_class, not a.no_progress,
                                            command, fdir)  # fmt: skip
        if a.features and hit:  # features of a cached backbone: found, or extracted in full
            from .features import load_or_extract

            load_or_extract(src, progress=not a.no_progress, backbone=load_finetuned(path))
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}")
        return 2
    m = record["measured"]
    print(f"{'cache hit' if hit else 'fine-tuned'}: {path} (sha256 {record['sha256']})")
    print(
        f"frozen blocks: {m['frozen_pass_images']} images in {m['frozen_pass_seconds']:.1f} s; "
        f"{m['images']} images x {schedule.epochs} epoch(s) in {m['train_seconds']:.1f} s on "
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
