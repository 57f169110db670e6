"""MCUNet-in3 (``mcunet-320kB``) as a frozen 160-d feature extractor.

The architecture can be built with random weights and no download (from a built-in table that
reproduces the published json); the ImageNet weights come from a local folder, the user cache, or
MIT Han Lab's release server, always checked against pinned sha256 digests.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_path
from ..errors import DataError
from ._paths import ENV_MODEL_DIR, cache_root, sha256_file, shared_dir

log = logging.getLogger(__name__)

STEM = "mcunet-320kb-1mb_imagenet"
"""File stem of MCUNet-in3 in the ``mcunet`` release (the paper calls it MCUNet-in3)."""
RESOLUTION = 176
FEATURE_DIM = 160
PINNED_SHA256 = {
    f"{STEM}.json": "ad1315f4d8fe035ae71f1c28fce395ea42d15a00d5d3c1b42347c410baf3412e",
    f"{STEM}.pth": "c0d4ccf4bb8ba93ef69a609c60ca053be2c6bab3b4ece19d9b7e66cec8a485e5",
}
RELEASE_URLS = (
    "https://hanlab18.mit.edu/projects/tinyml/mcunet/release/",
    "https://hanlab.mit.edu/projects/tinyml/mcunet/release/",
)
SHARED_SUBDIR = "models/mcunet-in3"

# (out_channels, kernel, stride, expand_ratio) of each inverted-residual block of MCUNet-in3.
_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (8, 3, 1, 1),
    (16, 7, 2, 3),
    (16, 3, 1, 5),
    (16, 7, 1, 5),
    (16, 5, 1, 4),
    (24, 5, 2, 5),
    (24, 5, 1, 5),
    (24, 5, 1, 5),
    (40, 3, 2, 5),
    (40, 7, 1, 6),
    (40, 5, 1, 4),
    (48, 5, 1, 5),
    (48, 7, 1, 5),
    (48, 3, 1, 5),
    (96, 3, 2, 6),
    (96, 7, 1, 5),
    (96, 3, 1, 4),
    (160, 7, 1, 5),
)


def mcunet_in3_config() -> dict[str, Any]:
    """The ``ProxylessNASNets`` config of MCUNet-in3, equal to the released ``.json``."""

    def identity(channels: int) -> dict[str, Any]:
        return {
            "name": "IdentityLayer",
            "in_channels": [channels],
            "out_channels": [channels],
            "use_bn": False,
            "act_func": None,
            "dropout_rate": 0,
            "ops_order": "weight_bn_act",
        }

    blocks = []
    channels = 16
    for out, kernel, stride, expand in _BLOCKS:
        conv = {
            "name": "MBInvertedConvLayer",
            "in_channels": channels,
            "out_channels": out,
            "kernel_size": kernel,
            "stride": stride,
            "expand_ratio": expand,
            "mid_channels": None if expand == 1 else channels * expand,
            "act_func": "relu6",
            "use_se": False,
        }
        residual = stride == 1 and out == channels
        blocks.append(
            {
                "name": "MobileInvertedResidualBlock",
                "mobile_inverted_conv": conv,
                "shortcut": identity(channels) if residual else None,
            }
        )
        channels = out
    return {
        "name": "ProxylessNASNets",
        "bn": {"momentum": 0.1, "eps": 1e-05, "ws_eps": None},
        "first_conv": {
            "name": "ConvLayer",
            "kernel_size": 3,
            "stride": 2,
            "dilation": 1,
            "groups": 1,
            "bias": False,
            "has_shuffle": False,
            "in_channels": 3,
            "out_channels": 16,
            "use_bn": True,
            "act_func": "relu6",
            "dropout_rate": 0,
            "ops_order": "weight_bn_act",
        },
        "blocks": blocks,
        "feature_mix_layer": None,
        "classifier": {
            "name": "LinearLayer",
            "in_features": FEATURE_DIM,
            "out_features": 1000,
            "bias": True,
            "use_bn": False,
            "act_func": None,
            "dropout_rate": 0,
            "ops_order": "weight_bn_act",
        },
        "resolution": RESOLUTION,
    }


@dataclass(frozen=True)
class ModelFiles:
    """The verified ``.json`` and ``.pth`` of MCUNet-in3."""

    json_path: Path
    pth_path: Path
    weights_sha256: str


@dataclass
class Backbone:
    """A frozen feature extractor: ``module(x)`` maps (B, 3, 176, 176) float to (B, 160)."""

    module: nn.Module
    weights_id: str
    """sha256 of the ``.pth`` (or ``random-seed<N>``); part of feature cache keys."""
    resolution: int = RESOLUTION
    feature_dim: int = FEATURE_DIM
    channels_last: bool = True


def _mcunet_class() -> Any:
    try:
        # This submodule needs torch only (mcunet.model_zoo pulls torchvision and a downloader).
        from mcunet.tinynas.nn.networks.proxyless_nets import ProxylessNASNets
    except Exception as exc:
        raise DataError(
            "the 'mcunet' package is needed to build MCUNet-in3 but cannot be imported "
            f"({type(exc).__name__}: {exc}); install it without its torch/torchvision pins: "
            "pip install --no-deps mcunet"
        ) from exc
    return ProxylessNASNets


def build_backbone(
    config: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
    *,
    weights_id: str = "random-seed0",
    seed: int = 0,
    channels_last: bool = True,
) -> Backbone:
    """Build MCUNet-in3 from ``config`` (default built-in), load ``state_dict`` or random weights.

    The classifier is replaced by identity, the module is put in eval mode with gradients off.
    """
    cfg = copy.deepcopy(config if config is not None else mcunet_in3_config())
    cls = _mcunet_class()
    if state_dict is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = cls.build_from_config(cfg)
    else:
        net = cls.build_from_config(cfg)
        missing, unexpected = net.load_state_dict(state_dict, strict=False)
        if missing or unexpected:
            raise DataError(
                f"MCUNet weights do not fit the architecture: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
    net.classifier = nn.Identity()
    net.eval()
    net.requires_grad_(False)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return Backbone(
        module=net,
        weights_id=weights_id,
        resolution=int(cfg.get("resolution", RESOLUTION)),
        channels_last=channels_last,
    )


def _verify(path: Path, what_to_do: str) -> str:
    expected = PINNED_SHA256[path.name]
    if not path.is_file():
        raise DataError(f"missing model file {path} (expected sha256 {expected}); {what_to_do}")
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"model file {path} has sha256 {actual}, expected {expected}; the file is corrupt or a "
            f"different release: {what_to_do}"
        )
    return actual


def _download(name: str, dest: Path, base_urls: tuple[str, ...], timeout: float) -> None:
    """Fetch ``name`` from the first base URL serving it with the pinned hash; write atomically."""
    import hashlib

    expected = PINNED_SHA256[name]
    errors = []
    for base in base_urls:
        url = base + name
        log.info("downloading %s", url)
        try:
            with atomic_path(dest) as tmp:
                digest = hashlib.sha256()
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as fh:
                    while block := resp.read(1 << 16):
                        digest.update(block)
                        fh.write(block)
                    fh.flush()
                    os.fsync(fh.fileno())
                if digest.hexdigest() != expected:
                    raise DataError(f"sha256 {digest.hexdigest()} != expected {expected}")
            return
        except (OSError, DataError) as exc:
            errors.append(f"{url}: {exc}")
    raise DataError(
        f"could not download {name} (expected sha256 {expected}): " + "; ".join(errors) + ". "
        f"Download {name} and {STEM}.json by hand into a folder and pass model_dir=<folder> "
        f"(config key data.params.model_dir) or set {ENV_MODEL_DIR}."
    )


def resolve_model_files(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    base_urls: tuple[str, ...] = RELEASE_URLS,
    timeout: float = 60.0,
) -> ModelFiles:
    """Find (or download) and verify MCUNet-in3's json and weights.

    Order: ``model_dir`` argument, ``$GOSSIP_LEARNING_MODEL_DIR``, the model cache
    (``<cache>/models``), ``shared/models/mcunet-in3``, then a download into the model cache.
    """
    names = (f"{STEM}.json", f"{STEM}.pth")
    explicit = model_dir if model_dir is not None else os.environ.get(ENV_MODEL_DIR)
    if explicit:
        folder = Path(explicit).expanduser()
        todo = (
            f"put the released {STEM}.json/.pth in {folder} or point model_dir / "
            f"{ENV_MODEL_DIR} elsewhere"
        )
        paths = [folder / n for n in names]
        digests = [_verify(p, todo) for p in paths]
        return ModelFiles(paths[0], paths[1], digests[1])

    cache = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "models"
    shared = shared_dir()
    for folder in [cache] + ([shared / SHARED_SUBDIR] if shared else []):
        if all((folder / n).is_file() for n in names):
            todo = f"delete {folder / '<file>'} so it is fetched again, or pass model_dir"
            paths = [folder / n for n in names]
            digests = [_verify(p, todo) for p in paths]
            return ModelFiles(paths[0], paths[1], digests[1])
    if not download:
        raise DataError(
            f"MCUNet-in3 weights not found in {cache} and download=False; pass model_dir=<folder "
            f"with {STEM}.json and .pth> (config key data.params.model_dir) or set {ENV_MODEL_DIR}"
        )
    for name in names:
        dest = cache / name
        if not dest.is_file():
            _download(name, dest, base_urls, timeout)
    paths = [cache / n for n in names]
    digests = [_verify(p, f"delete {p} and retry") for p in paths]
    return ModelFiles(paths[0], paths[1], digests[1])


def load_backbone(
    model_dir: str | os.PathLike[str] | None = None,
    *,
    channels_last: bool = True,
    download: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Backbone:
    """The ImageNet-pretrained MCUNet-in3 feature extractor (see :func:`resolve_model_files`)."""
    files = resolve_model_files(model_dir, download=download, cache_dir=cache_dir)
    config = json.loads(files.json_path.read_text(encoding="utf-8"))
    checkpoint = torch.load(files.pth_path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", checkpoint)
    return build_backbone(
        config, state, weights_id=files.weights_sha256, channels_last=channels_last
    )
