"""Feature extraction and the on-disk feature cache, with a random-weight backbone on tiny data."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip(
    "mcunet.tinynas.nn.networks.proxyless_nets", reason="pip install --no-deps mcunet"
)

from gossip_learning.errors import ConfigError, DataError  # noqa: E402
from gossip_learning.vision import backbone as bb  # noqa: E402
from gossip_learning.vision import features as ft  # noqa: E402

LOGGER = "gossip_learning.vision.features"


@pytest.fixture(scope="module")
def net() -> bb.Backbone:
    return bb.build_backbone(seed=0, weights_id="random-seed0")


def _write_pickles(folder: Path, per_batch: int = 10, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = per_batch if name != "data_batch_1" else 2 * per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {b"data": data, b"labels": (np.arange(n) % 10).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    # 60 train (6 per class), 10 test images: at most 70 images through the backbone per run.
    return _write_pickles(tmp_path / "cifar-10-batches-py")


def test_extract_features_shape(net: bb.Backbone) -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    out = ft.extract_features(net, imgs, batch_size=2, progress=False, threads=1)
    assert out.shape == (5, 160) and out.dtype == np.float32
    # Batching does not change the result.
    one = ft.extract_features(net, imgs, batch_size=5, progress=False)
    np.testing.assert_allclose(out, one, rtol=1e-4, atol=1e-5)


def test_cache_miss_then_hit(
    tmp_path: Path, data: Path, net: bb.Backbone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    kw = dict(cache_dir=tmp_path / "cache", progress=False, backbone=net, limit_per_class=2)
    first, rep1 = ft.load_or_extract(data, **kw)  # type: ignore[arg-type]
    assert not rep1.cache_hit and rep1.cache_path.is_file()
    assert first.X_train.shape == (20, 160) and first.y_train.dtype == np.int64
    assert first.X_test.shape == (10, 160) and first.num_classes == 10
    assert first.name == "cifar10-mcunet" and first.class_names[0] == "airplane"
    assert "cache miss" in caplog.text and "cache hit" not in caplog.text

    caplog.clear()
    second, rep2 = ft.load_or_extract(data, **kw)  # type: ignore[arg-type]
    assert rep2.cache_hit and rep2.cache_path == rep1.cache_path
    assert "cache hit" in caplog.text
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [rep1.cache_path.name]


def test_changed_inputs_miss(tmp_path: Path, data: Path, net: bb.Backbone) -> None:
    kw = dict(cache_dir=tmp_path / "cache", progress=False, limit_per_class=1)
    _, base = ft.load_or_extract(data, backbone=net, **kw)  # type: ignore[arg-type]
    # Another limit_per_class.
    _, rep = ft.load_or_extract(data, backbone=net, **{**kw, "limit_per_class": 2})  # type: ignore[arg-type]
    assert not rep.cache_hit and rep.cache_path != base.cache_path
    # Other weights.
    other = bb.build_backbone(seed=1, weights_id="random-seed1")
    _, rep = ft.load_or_extract(data, backbone=other, **kw)  # type: ignore[arg-type]
    assert not rep.cache_hit and rep.cache_path != base.cache_path
    # Other data.
    _write_pickles(data, seed=1)
    _, rep = ft.load_or_extract(data, backbone=net, **kw)  # type: ignore[arg-type]
    assert not rep.cache_hit and rep.cache_path != base.cache_path
    # Other preprocessing parameters.
    key = ft.cache_key("w", "d", None)
    real = ft.preprocess_params
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ft, "preprocess_params", lambda *a: {**real(*a), "version": -1})
        assert ft.cache_key("w", "d", None) != key
    # Another input resolution (a fine-tuned backbone's); the default is the backbone's own.
    assert ft.cache_key("w", "d", None, 96) != key == ft.cache_key("w", "d", None, 176)


def test_corrupt_cache_is_reported_and_recomputed(
    tmp_path: Path, data: Path, net: bb.Backbone, caplog: pytest.LogCaptureFixture
) -> None:
    kw = dict(cache_dir=tmp_path / "cache", progress=False, backbone=net, limit_per_class=1)
    good, rep = ft.load_or_extract(data, **kw)  # type: ignore[arg-type]
    rep.cache_path.write_bytes(rep.cache_path.read_bytes()[:1000])  # truncated file
    caplog.set_level(logging.INFO, logger=LOGGER)
    again, rep2 = ft.load_or_extract(data, **kw)  # type: ignore[arg-type]
    assert not rep2.cache_hit
    assert "corrupt feature cache" in caplog.text
    np.testing.assert_allclose(again.X_train, good.X_train, rtol=1e-4, atol=1e-5)
    ft.load_features(rep2.cache_path, json.loads(_meta(rep2.cache_path))["key"])


def _meta(path: Path) -> str:
    with np.load(path) as npz:
        return str(npz["meta"])


def test_interrupted_write_leaves_nothing(
    tmp_path: Path, data: Path, net: bb.Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ft.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        ft.load_or_extract(
            data, cache_dir=tmp_path / "cache", progress=False, backbone=net, limit_per_class=1
        )
    assert list((tmp_path / "cache").iterdir()) == []


def test_entry_point_with_model_dir(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_cifar10_mcunet end to end: weights from a folder (hash-pinned), features cached."""
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / f"{bb.STEM}.json").write_text(json.dumps(bb.mcunet_in3_config()))
    state = bb.build_backbone(seed=2, channels_last=False).module.state_dict()
    state["classifier.linear.weight"] = torch.zeros(1000, 160)
    state["classifier.linear.bias"] = torch.zeros(1000)
    torch.save({"state_dict": state}, model_dir / f"{bb.STEM}.pth")
    pins = {n: hashlib.sha256((model_dir / n).read_bytes()).hexdigest() for n in bb.PINNED_SHA256}
    monkeypatch.setattr(bb, "PINNED_SHA256", pins)
    import gossip_learning.vision  # noqa: F401  (registers the dataset)
    from gossip_learning.datasets import load_dataset

    params = {"source": str(data), "model_dir": str(model_dir), "cache_dir": str(tmp_path / "c")}
    ds = load_dataset("cifar10-mcunet", **params, limit_per_class=1, progress=False)
    assert ds.X_train.shape == (10, 160) and ds.X_test.shape == (10, 160)

    # The same weights with one byte changed are refused with the expected hash in the message.
    pth = model_dir / f"{bb.STEM}.pth"
    pth.write_bytes(pth.read_bytes() + b"\0")
    with pytest.raises(DataError, match=pins[pth.name]):
        ft.load_cifar10_mcunet(data, model_dir=model_dir, cache_dir=tmp_path / "c")


def test_bad_params() -> None:
    with pytest.raises(ConfigError, match="limit_per_class"):
        ft.load_cifar10_mcunet(limit_per_class=0)
    with pytest.raises(ConfigError, match="batch_size"):
        ft.load_cifar10_mcunet(batch_size=-1)


def test_nothing_found_says_what_to_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOSSIP_LEARNING_CIFAR", raising=False)
    monkeypatch.setenv("GOSSIP_LEARNING_SHARED", str(tmp_path / "none"))
    monkeypatch.setattr(ft, "torchvision_available", lambda: False)
    with pytest.raises(DataError, match=r"source=<path>.*GOSSIP_LEARNING_CIFAR"):
        ft.default_source(tmp_path / "tv")


def test_cli_prints_throughput(
    tmp_path: Path,
    data: Path,
    net: bb.Backbone,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(ft, "load_backbone", lambda model_dir=None: net)
    monkeypatch.setattr(ft, "_weights_id", lambda model_dir: net.weights_id)
    argv = [
        "--source",
        str(data),
        "--cache-dir",
        str(tmp_path / "c"),
        "--limit-per-class",
        "1",
        "--no-progress",
    ]
    assert ft.extract_features_main(argv) == 0
    assert "images/s" in capsys.readouterr().out
    assert ft.extract_features_main(argv) == 0
    assert "cache hit" in capsys.readouterr().out
