"""Fine-tuning MCUNet-in3 (``gossip-learning finetune``) on tiny images made here, with a
random-weight backbone: what trains, what stays frozen, the cache with its sha256 and
provenance, and feature extraction through the fine-tuned backbone."""

from __future__ import annotations

import json
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
from gossip_learning.vision import finetune as fn  # noqa: E402
from gossip_learning.vision.cifar import open_cifar10  # noqa: E402
from gossip_learning.vision.preprocess import preprocess  # noqa: E402

TINY = fn.Schedule(train_blocks=2, resolution=32, limit_per_class=None, epochs=4, batch_size=8,
                   lr=3e-3, seed=0)  # fmt: skip


@pytest.fixture(scope="module")
def net() -> bb.Backbone:
    """A random MCUNet-in3 whose batch-norm statistics are measured on the test's images (with
    its default statistics a random MCUNet's features are ~1e-9: nothing to learn from)."""
    made = bb.build_backbone(seed=0, weights_id="random-seed0")
    for m in made.module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration pass
    made.module.train()
    with torch.no_grad():
        made.module(preprocess(_images(10)[0], 32))
    made.module.eval()
    return made


def _images(n_per_class: int, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """32x32 images whose class is a colour, with noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (classes, 3))
    y = np.repeat(np.arange(classes), n_per_class)
    x = colours[y][:, None, None, :] + rng.normal(0, 40, (len(y), 32, 32, 3))
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def _pickles(folder: Path) -> Path:
    """A CIFAR-10 pickle folder of coloured images: 4 per class in train, 2 in test."""
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        per = 2 if name == "test_batch" else (4 if name == "data_batch_1" else 0)
        x, y = _images(per, classes=10, seed=len(name)) if per else (np.zeros((0, 32, 32, 3)), [])
        data = np.asarray(x, dtype=np.uint8).transpose(0, 3, 1, 2).reshape(len(y), 3072)
        (folder / name).write_bytes(pickle.dumps({b"data": data, b"labels": list(map(int, y))}))
    return folder


def test_trains_the_last_blocks_only_and_lowers_the_loss(net: bb.Backbone) -> None:
    x, y = _images(10)
    before = {k: v.clone() for k, v in net.module.state_dict().items()}
    tuned, head, stats = fn.finetune_backbone(net, x, y, TINY, progress=False)
    assert stats["train_loss_last"] < 0.3 * stats["train_loss_first"], stats
    after = tuned.module.state_dict()
    n = len(net.module.blocks)
    trained = tuple(f"blocks.{i}." for i in range(n - TINY.train_blocks, n))
    for k, v in before.items():
        changed = not torch.equal(v, after[k])
        if k.startswith(trained) and k.endswith("weight") and "bn" not in k:
            assert changed, f"{k} was meant to train"
        elif not k.startswith(trained):
            assert not changed, f"{k} is frozen (weights and batch-norm statistics)"
    assert net.module.state_dict()["blocks.17.mobile_inverted_conv.point_linear.conv.weight"].equal(
        before["blocks.17.mobile_inverted_conv.point_linear.conv.weight"]
    ), "the input backbone is left as it was"
    assert tuned.resolution == 32 and not any(p.requires_grad for p in tuned.module.parameters())
    assert fn.head_accuracy(tuned, head, x, y) > 0.8  # 4 classes: chance is 0.25


def test_cached_with_sha256_and_provenance_and_used_for_features(
    tmp_path: Path, net: bb.Backbone, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = open_cifar10(_pickles(tmp_path / "cifar-10-batches-py"))
    sched = fn.Schedule(train_blocks=1, resolution=32, limit_per_class=None, epochs=1,
                        batch_size=16)  # fmt: skip
    path, record, hit = fn.finetune_cached(src, sched, tmp_path / "ft", net, torch.device("cpu"),
                                           eval_per_class=2, progress=False)  # fmt: skip
    assert not hit and path.is_file()
    side = json.loads(path.with_suffix(".json").read_text())
    assert side == record and side["sha256"] == bb.sha256_file(path)
    assert side["schedule"]["train_blocks"] == 1 and side["base_weights_sha256"] == "random-seed0"
    assert side["measured"]["images"] == 40 and side["measured"]["test_images"] == 20
    assert side["run_info"]["git_commit"] and "git_dirty" in side["run_info"]

    def no_training(*args: object, **kw: object) -> None:
        raise AssertionError("a cached schedule is not trained again")

    monkeypatch.setattr(fn, "finetune_backbone", no_training)
    again, _, hit = fn.finetune_cached(src, sched, tmp_path / "ft", net, torch.device("cpu"),
                                       progress=False)  # fmt: skip
    assert hit and again == path
    monkeypatch.undo()

    tuned = fn.load_finetuned(path)
    assert tuned.weights_id == f"finetuned-{record['sha256']}" and tuned.resolution == 32
    ds, rep = ft.load_or_extract(src, cache_dir=tmp_path / "fc", progress=False, backbone=tuned)
    _, base_rep = ft.load_or_extract(src, cache_dir=tmp_path / "fc", progress=False, backbone=net)
    assert rep.cache_path != base_rep.cache_path
    with np.load(rep.cache_path) as npz:
        assert json.loads(str(npz["meta"]))["preprocess"]["resolution"] == 32
    ds2 = ft.load_cifar10_mcunet(src.path, cache_dir=tmp_path / "fc", progress=False,
                                 backbone_file=str(path))  # fmt: skip
    np.testing.assert_array_equal(ds.X_train, ds2.X_train)

    path.write_bytes(path.read_bytes()[:-8] + b"tampered")
    with pytest.raises(DataError, match="sha256"):
        fn.load_finetuned(path)
    with pytest.raises(DataError, match="gossip-learning finetune"):
        fn.load_finetuned(tmp_path / "missing.pt")


def test_bad_schedule_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="--train-blocks"):
        fn.Schedule(train_blocks=19).check(18)
    with pytest.raises(ConfigError, match="--resolution"):
        fn.Schedule(resolution=16).check(18)
    assert fn.main(["--epochs", "0", "--source", "/nonexistent"]) == 2
    assert "--epochs" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_asked_for_without_one() -> None:
    assert fn.pick_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="--device"):
        fn.pick_device("cuda")


def test_features_from_the_frozen_pass_equal_a_full_extraction(
    tmp_path: Path, net: bb.Backbone
) -> None:
    """``--features``: the features cached from the one frozen pass are what a full pass through
    the saved backbone gives, and ``load_or_extract`` finds them (no second pass)."""
    src = open_cifar10(_pickles(tmp_path / "cifar-10-batches-py"))
    sched = fn.Schedule(train_blocks=3, resolution=32, limit_per_class=None, epochs=1,
                        batch_size=16)  # fmt: skip
    path, record, _ = fn.finetune_cached(src, sched, tmp_path / "ft", net, torch.device("cpu"),
                                         progress=False, features_dir=tmp_path / "fc")  # fmt: skip
    assert record["measured"]["test_images"] == 20  # the whole test split when caching features
    tuned = fn.load_finetuned(path)
    ds, rep = ft.load_or_extract(src, cache_dir=tmp_path / "fc", progress=False, backbone=tuned)
    assert rep.cache_hit
    full, rep2 = ft.load_or_extract(src, cache_dir=tmp_path / "full", progress=False,
                                    backbone=tuned)  # fmt: skip
    assert not rep2.cache_hit and rep2.cache_path.name == rep.cache_path.name
    # float32 convolutions sum in an order that depends on the batch and the threads: equal to
    # a few 1e-5 (a block left out or run twice moves them by far more)
    np.testing.assert_allclose(ds.X_train, full.X_train, rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(ds.X_test, full.X_test, rtol=1e-3, atol=2e-4)
    np.testing.assert_array_equal(ds.y_test, full.y_test)
    with pytest.raises(ConfigError, match="--limit-per-class"):
        fn.finetune_cached(src, fn.Schedule(limit_per_class=5), tmp_path / "ft", net,
                           torch.device("cpu"), features_dir=tmp_path / "fc")  # fmt: skip
