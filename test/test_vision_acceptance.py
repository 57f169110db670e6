"""Acceptance: the real MCUNet-in3 weights and CIFAR-10 from the project's shared folder.

Skipped (with the reason) when the shared folder is absent, as it is for most users.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip(
    "mcunet.tinynas.nn.networks.proxyless_nets", reason="pip install --no-deps mcunet"
)

from gossip_learning.vision import backbone as bb  # noqa: E402
from gossip_learning.vision._paths import shared_dir  # noqa: E402
from gossip_learning.vision.features import SHARED_TARBALL, load_or_extract  # noqa: E402

pytestmark = [pytest.mark.acceptance, pytest.mark.slow]

SHARED = shared_dir()
MODEL_DIR = SHARED / bb.SHARED_SUBDIR if SHARED else None
TARBALL = SHARED / SHARED_TARBALL if SHARED else None
needs_model = pytest.mark.skipif(
    MODEL_DIR is None or not (MODEL_DIR / f"{bb.STEM}.pth").is_file(),
    reason="MCUNet-in3 weights not found in ../shared (set GOSSIP_LEARNING_SHARED)",
)
needs_data = pytest.mark.skipif(
    TARBALL is None or not TARBALL.is_file(),
    reason="cifar10-jpeg.tar.gz not found in ../shared (set GOSSIP_LEARNING_SHARED)",
)


@needs_model
def test_real_weights_verified_and_config_matches() -> None:
    assert MODEL_DIR is not None
    files = bb.resolve_model_files(MODEL_DIR)
    assert files.weights_sha256 == bb.PINNED_SHA256[f"{bb.STEM}.pth"]
    assert json.loads(files.json_path.read_text()) == bb.mcunet_in3_config()


@needs_model
@needs_data
def test_real_features_carry_class_signal(tmp_path: Path) -> None:
    """20 train + 20 test images per class: nearest centroid must beat chance (10 %) by far."""
    ds, report = load_or_extract(
        TARBALL, model_dir=MODEL_DIR, cache_dir=tmp_path, limit_per_class=20, progress=False
    )
    assert not report.cache_hit
    assert ds.X_train.shape == (200, 160) and ds.X_test.shape == (200, 160)
    mean, std = ds.X_train.mean(0), ds.X_train.std(0) + 1e-6
    xtr, xte = (ds.X_train - mean) / std, (ds.X_test - mean) / std
    centroids = np.stack([xtr[ds.y_train == c].mean(0) for c in range(10)])
    dists = ((xte[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = float((dists.argmin(1) == ds.y_test).mean())
    assert accuracy > 0.35, accuracy
