"""MCUNet-in3 backbone: built from the built-in config, weights resolved and hash-checked."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip(
    "mcunet.tinynas.nn.networks.proxyless_nets", reason="pip install --no-deps mcunet"
)

from gossip_learning.errors import DataError  # noqa: E402
from gossip_learning.vision import backbone as bb  # noqa: E402
from gossip_learning.vision.preprocess import preprocess  # noqa: E402


@pytest.fixture(scope="module")
def random_backbone() -> bb.Backbone:
    return bb.build_backbone(seed=0)


def _fake_release(folder: Path, monkeypatch: pytest.MonkeyPatch, net: bb.Backbone) -> None:
    """Write a json + a random-weight checkpoint and pin their hashes."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{bb.STEM}.json").write_text(json.dumps(bb.mcunet_in3_config()))
    fresh = bb.build_backbone(seed=1, channels_last=False)
    state = {k: v for k, v in fresh.module.state_dict().items()}
    # The checkpoint has the 1000-way classifier that load_backbone drops.
    state["classifier.linear.weight"] = torch.zeros(1000, 160)
    state["classifier.linear.bias"] = torch.zeros(1000)
    torch.save({"state_dict": state}, folder / f"{bb.STEM}.pth")
    pins = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in bb.PINNED_SHA256
    }
    monkeypatch.setattr(bb, "PINNED_SHA256", pins)


def test_builtin_config_outputs_160_features(random_backbone: bb.Backbone) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    with torch.inference_mode():
        out = random_backbone.module(preprocess(images))
    assert out.shape == (3, bb.FEATURE_DIM)
    assert torch.isfinite(out).all()
    assert not random_backbone.module.training
    assert all(not p.requires_grad for p in random_backbone.module.parameters())


def test_random_weights_are_seeded() -> None:
    a = bb.build_backbone(seed=3).module.state_dict()
    b = bb.build_backbone(seed=3).module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_config_is_not_mutated() -> None:
    cfg = bb.mcunet_in3_config()
    before = json.dumps(cfg, sort_keys=True)
    bb.build_backbone(cfg)
    assert json.dumps(cfg, sort_keys=True) == before


def test_load_from_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_backbone: bb.Backbone
) -> None:
    _fake_release(tmp_path / "m", monkeypatch, random_backbone)
    net = bb.load_backbone(tmp_path / "m")
    assert net.weights_id == bb.PINNED_SHA256[f"{bb.STEM}.pth"]
    x = preprocess(np.zeros((1, 32, 32, 3), dtype=np.uint8))
    with torch.inference_mode():
        assert net.module(x).shape == (1, 160)


def test_env_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_backbone: bb.Backbone
) -> None:
    _fake_release(tmp_path / "m", monkeypatch, random_backbone)
    monkeypatch.setenv("GOSSIP_LEARNING_MODEL_DIR", str(tmp_path / "m"))
    files = bb.resolve_model_files()
    assert files.pth_path == tmp_path / "m" / f"{bb.STEM}.pth"


def test_hash_mismatch_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_backbone: bb.Backbone
) -> None:
    _fake_release(tmp_path / "m", monkeypatch, random_backbone)
    pth = tmp_path / "m" / f"{bb.STEM}.pth"
    pth.write_bytes(pth.read_bytes()[:-1] + b"x")
    with pytest.raises(DataError) as err:
        bb.resolve_model_files(tmp_path / "m")
    msg = str(err.value)
    assert str(pth) in msg and bb.PINNED_SHA256[pth.name] in msg and "model_dir" in msg


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing model file .*mcunet-320kb-1mb_imagenet\.json"):
        bb.resolve_model_files(tmp_path)


def test_download_verifies_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_backbone: bb.Backbone
) -> None:
    _fake_release(tmp_path / "server", monkeypatch, random_backbone)
    monkeypatch.delenv("GOSSIP_LEARNING_MODEL_DIR", raising=False)
    monkeypatch.setenv("GOSSIP_LEARNING_SHARED", str(tmp_path / "no-shared"))
    dead = (tmp_path / "dead").as_uri() + "/"
    server = (tmp_path / "server").as_uri() + "/"
    files = bb.resolve_model_files(cache_dir=tmp_path / "cache", base_urls=(dead, server))
    assert files.json_path.parent == tmp_path / "cache"
    assert files.weights_sha256 == bb.PINNED_SHA256[f"{bb.STEM}.pth"]
    # Second call finds the cache without downloading.
    again = bb.resolve_model_files(cache_dir=tmp_path / "cache", download=False)
    assert again == files


def test_bad_download_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_backbone: bb.Backbone
) -> None:
    _fake_release(tmp_path / "server", monkeypatch, random_backbone)
    monkeypatch.setitem(bb.PINNED_SHA256, f"{bb.STEM}.json", "0" * 64)
    monkeypatch.delenv("GOSSIP_LEARNING_MODEL_DIR", raising=False)
    monkeypatch.setenv("GOSSIP_LEARNING_SHARED", str(tmp_path / "no-shared"))
    with pytest.raises(DataError, match=r"0{64}"):
        bb.resolve_model_files(
            cache_dir=tmp_path / "cache", base_urls=((tmp_path / "server").as_uri() + "/",)
        )
    assert list((tmp_path / "cache").iterdir()) == []
