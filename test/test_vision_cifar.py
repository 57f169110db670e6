"""CIFAR-10 readers on tiny files written by the tests."""

from __future__ import annotations

import builtins
import io
import pickle
import sys
import tarfile
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
# gossip_learning.vision imports torch (its backbone) when the package is imported.
pytest.importorskip("torch")

from gossip_learning.errors import DataError  # noqa: E402
from gossip_learning.vision import cifar  # noqa: E402
from gossip_learning.vision.cifar import CLASS_NAMES, open_cifar10, read_cifar10  # noqa: E402

RNG = np.random.default_rng(0)


def _images(n: int) -> np.ndarray:
    return RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _write_pickles(folder: Path, per_batch: int = 20) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Five train batches and one test batch in the python CIFAR format; returns the arrays."""
    folder.mkdir(parents=True)
    truth: dict[str, list[Any]] = {"train": [[], []], "test": [[], []]}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        x = _images(per_batch)
        y = np.arange(per_batch) % 10
        data = x.transpose(0, 3, 1, 2).reshape(per_batch, -1)
        batch = {b"data": data, b"labels": y.tolist(), b"batch_label": name.encode()}
        (folder / name).write_bytes(pickle.dumps(batch))
        split = "test" if name == "test_batch" else "train"
        truth[split][0].append(x)
        truth[split][1].append(y)
    return {s: (np.concatenate(v[0]), np.concatenate(v[1])) for s, v in truth.items()}


def _write_folder(root: Path, per_class: int = 2, fmt: str = "PNG") -> dict[str, np.ndarray]:
    """``root/{train,test}/<class>/NNNN.png``; returns the images by relative path."""
    written = {}
    for split in ("train", "test"):
        for cls in CLASS_NAMES:
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                img = _images(1)[0]
                rel = f"{split}/{cls}/{i:04d}.{fmt.lower()}"
                Image.fromarray(img).save(root / rel, format=fmt)
                written[rel] = img
    return written


def _tar(src: Path, dest: Path, arcname: str) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=arcname)
    return dest


def test_pickle_dir(tmp_path: Path) -> None:
    truth = _write_pickles(tmp_path / "cifar-10-batches-py")
    for source in (tmp_path / "cifar-10-batches-py", tmp_path):
        data = read_cifar10(source)
        assert data.x_train.dtype == np.uint8 and data.y_train.dtype == np.int64
        np.testing.assert_array_equal(data.x_train, truth["train"][0])
        np.testing.assert_array_equal(data.y_test, truth["test"][1])
        assert data.class_names == list(CLASS_NAMES)


def test_pickle_tar_and_limit(tmp_path: Path) -> None:
    truth = _write_pickles(tmp_path / "b")
    tgz = _tar(tmp_path / "b", tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py")
    src = open_cifar10(tgz)
    assert src.kind == "pickle-tar"
    data = src.read(limit_per_class=3)
    assert data.x_train.shape == (30, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(data.y_train), [3] * 10)
    # The first images of each class are kept, in file order.
    np.testing.assert_array_equal(data.x_train[:10], truth["train"][0][:10])


def test_image_folder_dir(tmp_path: Path) -> None:
    written = _write_folder(tmp_path / "cifar10")
    src = open_cifar10(tmp_path / "cifar10")
    assert src.kind == "folder-dir"
    data = src.read()
    assert data.x_train.shape == (20, 32, 32, 3) and data.y_train.dtype == np.int64
    np.testing.assert_array_equal(data.y_train, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(data.x_test[2], written["test/automobile/0000.png"])
    # A parent folder with one top directory is recognised too.
    assert open_cifar10(tmp_path).prefix == "cifar10/"


def test_image_folder_tar_gz_jpeg(tmp_path: Path) -> None:
    written = _write_folder(tmp_path / "cifar10-jpeg", per_class=3, fmt="JPEG")
    tgz = _tar(tmp_path / "cifar10-jpeg", tmp_path / "c.tar.gz", "cifar10-jpeg")
    src = open_cifar10(tgz)
    assert (src.kind, src.prefix) == ("folder-tar", "cifar10-jpeg/")
    data = src.read(limit_per_class=2)
    assert data.x_train.shape == (20, 32, 32, 3) and data.x_test.shape == (20, 32, 32, 3)
    with Image.open(tmp_path / "cifar10-jpeg/train/bird/0001.jpeg") as im:
        np.testing.assert_array_equal(data.x_train[5], np.asarray(im.convert("RGB")))
    assert "train/bird/0001.jpeg" in written


def test_unknown_layouts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="accepted CIFAR-10 sources"):
        open_cifar10(tmp_path / "empty")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(DataError, match="accepted CIFAR-10 sources"):
        open_cifar10(tmp_path / "junk.tar.gz")
    with pytest.raises(DataError, match="does not exist"):
        open_cifar10(tmp_path / "nope")


def test_unknown_class_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "c", per_class=1)
    (tmp_path / "c/train/unicorn").mkdir()
    Image.fromarray(_images(1)[0]).save(tmp_path / "c/train/unicorn/0.png")
    with pytest.raises(DataError, match="unicorn"):
        read_cifar10(tmp_path / "c")


def test_wrong_image_size(tmp_path: Path) -> None:
    _write_folder(tmp_path / "c", per_class=1)
    Image.new("RGB", (40, 30)).save(tmp_path / "c/test/cat/0000.png")
    with pytest.raises(DataError, match="32x32"):
        read_cifar10(tmp_path / "c")


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    _write_pickles(tmp_path / "b")
    before = open_cifar10(tmp_path / "b").fingerprint()
    assert open_cifar10(tmp_path / "b").fingerprint() == before
    raw = pickle.loads((tmp_path / "b/test_batch").read_bytes())
    raw[b"labels"][0] = (raw[b"labels"][0] + 1) % 10
    (tmp_path / "b/test_batch").write_bytes(pickle.dumps(raw))
    assert open_cifar10(tmp_path / "b").fingerprint() != before


@pytest.fixture
def no_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torchvision`` fail the way a torch/torchvision mismatch does."""
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torchvision" or name.startswith("torchvision."):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_torchvision_absent(tmp_path: Path, no_torchvision: None) -> None:
    assert not cifar.torchvision_available()
    with pytest.raises(DataError, match="torchvision cannot be imported"):
        open_cifar10("torchvision", tmp_path)


def test_torchvision_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x = _images(30)
    y = np.arange(30) % 10

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            self.classes = list(CLASS_NAMES)
            assert download
            self.data = x if train else x[:10]
            self.targets = y.tolist() if train else y[:10].tolist()

    tv = types.ModuleType("torchvision")
    tv_datasets = types.ModuleType("torchvision.datasets")
    tv_datasets.CIFAR10 = FakeCIFAR10  # type: ignore[attr-defined]
    tv.datasets = tv_datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", tv_datasets)
    assert cifar.torchvision_available()
    data = open_cifar10("torchvision", tmp_path).read(limit_per_class=2)
    np.testing.assert_array_equal(data.x_train, x[:20])
    assert data.x_test.shape == (10, 32, 32, 3) and data.y_test.dtype == np.int64


def test_decodes_jpeg_bytes_from_memory() -> None:
    buf = io.BytesIO()
    Image.fromarray(_images(1)[0]).save(buf, format="PNG")
    assert cifar._decode_image(buf.getvalue(), "x").shape == (32, 32, 3)


def test_image_bytes_are_what_read_decodes(tmp_path: Path) -> None:
    _write_folder(tmp_path / "cifar10-jpeg", per_class=3, fmt="JPEG")
    tgz = _tar(tmp_path / "cifar10-jpeg", tmp_path / "c.tar.gz", "cifar10-jpeg")
    for src in (open_cifar10(tgz), open_cifar10(tmp_path / "cifar10-jpeg")):
        items = cifar.image_bytes(src, limit_per_class=2, splits=("test",))
        assert [(s, label) for s, label, _ in items] == [
            ("test", c) for c in range(10) for _ in range(2)
        ]
        decoded = np.stack([cifar.decode_image(raw) for _, _, raw in items])
        np.testing.assert_array_equal(decoded, src.read(limit_per_class=2).x_test)
    pickles = tmp_path / "p"
    _write_pickles(pickles)
    with pytest.raises(DataError, match="no encoded images"):
        cifar.image_bytes(open_cifar10(pickles))
