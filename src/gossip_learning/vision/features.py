"""Backbone features of CIFAR-10, computed once and cached as ``.npz``.

Cache key = sha256 of (backbone weights sha256, dataset fingerprint, ``limit_per_class``,
preprocessing parameters, feature-format version). Files live in
``<cache>/features/cifar10-mcunet-<key[:20]>.npz`` with arrays ``X_train, y_train, X_test, y_test``
and a JSON ``meta`` string.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path
from ..datasets import Dataset
from ..errors import ConfigError, DataError
from ._paths import ENV_CIFAR, cache_root, shared_dir
from .backbone import RESOLUTION, Backbone, load_backbone, resolve_model_files
from .cifar import LAYOUTS_HELP, CifarSource, open_cifar10, torchvision_available
from .preprocess import preprocess, preprocess_params

log = logging.getLogger(__name__)

DATASET_NAME = "cifar10-mcunet"
FEATURE_FORMAT = 1
SHARED_TARBALL = "datasets/cifar10-jpeg.tar.gz"
_ARRAYS = ("X_train", "y_train", "X_test", "y_test")


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (None: leave as is)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def extract_features(
    backbone: Backbone,
    images: np.ndarray,
    batch_size: int = 32,
    progress: bool = True,
    threads: int | None = None,
    desc: str = "features",
) -> np.ndarray:
    """Run uint8 images (N, H, W, 3) through the frozen backbone; returns float32 (N, 160)."""
    from tqdm import tqdm

    out = np.empty((len(images), backbone.feature_dim), dtype=np.float32)
    bar = tqdm(total=len(images), desc=desc, unit="img", disable=not progress)
    with _torch_threads(threads), torch.inference_mode(), bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            x = preprocess(batch, backbone.resolution, channels_last=backbone.channels_last)
            out[start : start + len(batch)] = backbone.module(x).float().numpy()
            bar.update(len(batch))
    return out


def cache_key(
    weights_id: str,
    data_fingerprint: str,
    limit_per_class: int | None,
    resolution: int = RESOLUTION,
) -> str:
    """Hex sha256 over everything that determines the cached features."""
    parts = {
        "format": FEATURE_FORMAT,
        "dataset": DATASET_NAME,
        "weights": weights_id,
        "data": data_fingerprint,
        "limit_per_class": limit_per_class,
        "preprocess": preprocess_params(resolution),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_file(cache_dir: Path, key: str) -> Path:
    """Path of the cached features for ``key``."""
    return cache_dir / f"{DATASET_NAME}-{key[:20]}.npz"


def save_features(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write the feature ``.npz`` atomically (temp file + fsync + rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        payload: dict[str, Any] = {"meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
        np.savez(fh, **payload)
        fh.flush()
        os.fsync(fh.fileno())


def load_features(path: Path, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and validate a cached ``.npz``; DataError when it is corrupt or for another key."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {name: npz[name] for name in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"corrupt feature cache {path}: {type(exc).__name__}: {exc}") from exc
    if meta.get("key") != key:
        raise DataError(f"feature cache {path} belongs to key {meta.get('key')}, not {key}")
    for split in ("train", "test"):
        x, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if x.ndim != 2 or x.dtype != np.float32 or y.shape != (len(x),) or y.dtype != np.int64:
            raise DataError(f"corrupt feature cache {path}: {split} arrays {x.shape}, {y.shape}")
        if not np.isfinite(x).all():
            raise DataError(f"corrupt feature cache {path}: non-finite {split} features")
    return arrays, meta


def default_source(torchvision_root: Path) -> CifarSource:
    """``$GOSSIP_LEARNING_CIFAR``, the shared tarball, or a torchvision download, in that order."""
    env = os.environ.get(ENV_CIFAR)
    if env:
        return open_cifar10(env)
    shared = shared_dir()
    if shared is not None and (shared / SHARED_TARBALL).is_file():
        return open_cifar10(shared / SHARED_TARBALL)
    if torchvision_available():
        return open_cifar10("torchvision", torchvision_root)
    raise DataError(
        "no CIFAR-10 found: pass source=<path> (config key data.params.source) or set "
        f"{ENV_CIFAR}; {LAYOUTS_HELP}. (torchvision is not importable, so it cannot download.)"
    )


@dataclass
class ExtractionReport:
    """What :func:`load_or_extract` did."""

    cache_path: Path
    cache_hit: bool
    num_images: int
    seconds: float
    """Wall time of reading + feature extraction (0 on a cache hit)."""
    extract_seconds: float
    """Wall time of the backbone pass alone."""


def _check_params(limit_per_class: int | None, batch_size: int, threads: int | None) -> None:
    if limit_per_class is not None and (
        not isinstance(limit_per_class, int) or limit_per_class < 1
    ):
        raise ConfigError(
            "data.params.limit_per_class",
            f"must be a positive integer or null, got {limit_per_class!r}",
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(
            "data.params.batch_size", f"must be a positive integer, got {batch_size!r}"
        )
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(
            "data.params.threads", f"must be a positive integer or null, got {threads!r}"
        )


def load_or_extract(
    source: str | os.PathLike[str] | CifarSource | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit_per_class: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
    threads: int | None = None,
    backbone: Backbone | None = None,
) -> tuple[Dataset, ExtractionReport]:
    """:func:`load_cifar10_mcunet` plus a report; ``backbone`` replaces the pretrained one."""
    _check_params(limit_per_class, batch_size, threads)
    root = cache_root()
    feature_dir = Path(cache_dir).expanduser() if cache_dir is not None else root / "features"
    if isinstance(source, CifarSource):
        src = source
    elif source is None:
        src = default_source(root / "datasets" / "cifar10")
    else:
        src = open_cifar10(source, root / "datasets" / "cifar10")
    weights_id = _weights_id(model_dir) if backbone is None else backbone.weights_id
    resolution = RESOLUTION if backbone is None else backbone.resolution
    key = cache_key(weights_id, src.fingerprint(), limit_per_class, resolution)
    path = cache_file(feature_dir, key)

    if path.is_file():
        try:
            arrays, _ = load_features(path, key)
        except DataError as exc:
            log.warning("%s; recomputing", exc)
            path.unlink(missing_ok=True)
        else:
            log.info("cache hit: %s", path)
            n = len(arrays["X_train"]) + len(arrays["X_test"])
            return _dataset(arrays), ExtractionReport(path, True, n, 0.0, 0.0)

    log.info("cache miss: extracting features of %s into %s", src.describe(), path)
    t0 = time.perf_counter()
    raw = src.read(limit_per_class)
    if backbone is None:
        backbone = load_backbone(model_dir)
    t1 = time.perf_counter()
    arrays = {
        "X_train": extract_features(backbone, raw.x_train, batch_size, progress, threads, "train"),
        "y_train": raw.y_train,
        "X_test": extract_features(backbone, raw.x_test, batch_size, progress, threads, "test"),
        "y_test": raw.y_test,
    }
    t2 = time.perf_counter()
    store_features(path, key, src, weights_id, limit_per_class, resolution, arrays)
    n = len(raw.x_train) + len(raw.x_test)
    return _dataset(arrays), ExtractionReport(path, False, n, t2 - t0, t2 - t1)


def store_features(
    path: Path,
    key: str,
    src: CifarSource,
    weights_id: str,
    limit_per_class: int | None,
    resolution: int,
    arrays: dict[str, np.ndarray],
) -> None:
    """Write computed features where :func:`load_or_extract` looks for them, with their meta."""
    from .cifar import CLASS_NAMES

    meta = {
        "key": key,
        "dataset": DATASET_NAME,
        "source": src.describe(),
        "weights_sha256": weights_id,
        "limit_per_class": limit_per_class,
        "preprocess": preprocess_params(resolution),
        "class_names": list(CLASS_NAMES),
        "torch": torch.__version__,
    }
    save_features(path, arrays, meta)


def _weights_id(model_dir: str | os.PathLike[str] | None) -> str:
    return resolve_model_files(model_dir).weights_sha256


def _dataset(arrays: dict[str, np.ndarray]) -> Dataset:
    from .cifar import CLASS_NAMES

    return Dataset(
        name=DATASET_NAME,
        X_train=arrays["X_train"],
        y_train=arrays["y_train"],
        X_test=arrays["X_test"],
        y_test=arrays["y_test"],
        num_classes=len(CLASS_NAMES),
        class_names=list(CLASS_NAMES),
    )


def load_cifar10_mcunet(
    source: str | os.PathLike[str] | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    limit_per_class: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
    threads: int | None = None,
    backbone_file: str | None = None,
) -> Dataset:
    """CIFAR-10 as 160-d MCUNet-in3 features (float32) with int64 labels, cached on disk.

    ``source``: CIFAR-10 location (see :mod:`gossip_learning.vision.cifar`); None →
    ``$GOSSIP_LEARNING_CIFAR``, the project's shared tarball, or a torchvision download.
    ``model_dir``: folder with the MCUNet-in3 ``.json``/``.pth`` (None → env, cache, shared,
    download). ``cache_dir``: feature cache folder (default ``<user cache>/gossip_learning/
    features``). ``limit_per_class``: keep the first N images per class and split (quick runs).
    ``batch_size`` 32 is the fastest on a 2-core CPU (larger batches overflow the caches).
    ``backbone_file``: a fine-tuned backbone (``gossip-learning finetune``) instead of the
    ImageNet one; its features are cached under its own sha256.
    """
    backbone = _finetuned(backbone_file)
    dataset, _ = load_or_extract(
        source, model_dir, cache_dir, limit_per_class, batch_size, progress, threads, backbone
    )
    return dataset


def _finetuned(backbone_file: str | None) -> Backbone | None:
    if not backbone_file:
        return None
    from .finetune import load_finetuned

    return load_finetuned(backbone_file)


def log_to_stderr() -> None:
    """INFO lines on stderr for a command line run, unless logging is already set up."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def extract_features_main(argv: Sequence[str] | None = None) -> int:
    """CLI: extract (or find cached) CIFAR-10 MCUNet-in3 features and print throughput."""
    parser = argparse.ArgumentParser(
        prog="gossip-learning features", description=extract_features_main.__doc__
    )
    parser.add_argument("--source", help="CIFAR-10 source: " + LAYOUTS_HELP)
    parser.add_argument("--model-dir", help="folder with the MCUNet-in3 .json and .pth")
    parser.add_argument("--cache-dir", help="feature cache folder")
    parser.add_argument("--limit-per-class", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--backbone-file", help="a fine-tuned backbone (gossip-learning finetune)")
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        dataset, report = load_or_extract(
            args.source,
            args.model_dir,
            args.cache_dir,
            args.limit_per_class,
            args.batch_size,
            not args.no_progress,
            args.threads,
            _finetuned(args.backbone_file),
        )
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}")
        return 2
    print(f"features: {report.cache_path}")
    print(f"train {dataset.X_train.shape}, test {dataset.X_test.shape}")
    if report.cache_hit:
        print("cache hit: nothing extracted")
    else:
        rate = report.num_images / max(report.extract_seconds, 1e-9)
        print(
            f"extracted {report.num_images} images in {report.seconds:.1f} s wall "
            f"(backbone {report.extract_seconds:.1f} s, {rate:.1f} images/s, "
            f"{torch.get_num_threads() if args.threads is None else args.threads} threads)"
        )
    return 0
