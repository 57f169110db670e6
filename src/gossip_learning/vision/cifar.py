"""CIFAR-10 readers returning uint8 arrays (N, 32, 32, 3) and int64 labels per split.

Accepted sources (see :func:`open_cifar10`):

* the ``cifar-10-batches-py`` pickle folder, or the official ``cifar-10-python.tar.gz``;
* an image folder ``root/{train,test}/<class>/*.jpg|png`` (optionally under one top folder), as a
  directory or a ``.tar``/``.tar.gz`` read in place (no extraction);
* ``"torchvision"``: ``torchvision.datasets.CIFAR10(download=True)`` when torchvision imports.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from ..errors import DataError
from ._paths import sha256_file

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
READER_VERSION = 1
_PICKLE_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
LAYOUTS_HELP = (
    "accepted CIFAR-10 sources: a 'cifar-10-batches-py' folder (data_batch_1..5, test_batch) or "
    "the official cifar-10-python.tar.gz; an image folder <root>/{train,test}/<class>/*.jpg|png "
    "(class folders named airplane ... truck) as a directory or .tar/.tar.gz; or 'torchvision'"
)

Splits = dict[str, tuple[np.ndarray, np.ndarray]]
Kind = Literal["pickle-dir", "pickle-tar", "folder-dir", "folder-tar", "torchvision"]


@dataclass
class CifarArrays:
    """Raw CIFAR-10 images and labels of both splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]


def _limit(labels: np.ndarray, limit_per_class: int | None) -> np.ndarray:
    """Indices of the first ``limit_per_class`` samples of each class, in original order."""
    if limit_per_class is None:
        return np.arange(len(labels))
    keep = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:limit_per_class]] = True
    return np.flatnonzero(keep)


def _check_images(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim != 4 or x.shape[1:] != (32, 32, 3) or x.dtype != np.uint8:
        raise DataError(f"{where}: expected uint8 images (N, 32, 32, 3), got {x.dtype} {x.shape}")
    return x


# ---------------------------------------------------------------- pickle batches


def _decode_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch: Any = pickle.loads(raw, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:
        raise DataError(
            f"{where}: not a CIFAR-10 pickle batch ({type(exc).__name__}: {exc})"
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{where}: CIFAR-10 batch with data {data.shape}, labels {labels.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _join_batches(
    batches: Iterable[tuple[np.ndarray, np.ndarray]], limit_per_class: int | None
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*batches, strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    idx = _limit(y, limit_per_class)
    return x[idx], y[idx]


def _find_pickle_dir(path: Path) -> Path | None:
    for candidate in (path, path / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").is_file() and (candidate / "test_batch").is_file():
            return candidate
    return None


# ---------------------------------------------------------------- image folders


def _parse_member(rel: PurePosixPath) -> tuple[str, int] | None:
    """(split, label) of ``<split>/<class>/<file>`` paths with an image suffix, else None."""
    if len(rel.parts) != 3 or rel.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    split, cls, _ = rel.parts
    if split not in SPLITS:
        return None
    if cls not in CLASS_NAMES:
        raise DataError(
            f"unknown class folder '{cls}' in {rel}; class folders must be {CLASS_NAMES}"
        )
    return split, CLASS_NAMES.index(cls)


def _folder_root(names: Iterable[str]) -> str | None:
    """'' if images sit at ``train/<class>/…``, ``top/`` if under one top folder, else None."""
    prefixes = set()
    for name in names:
        parts = PurePosixPath(name).parts
        for depth in (0, 1):
            if len(parts) == depth + 3 and parts[depth] in SPLITS:
                prefixes.add("/".join(parts[:depth]) + ("/" if depth else ""))
    if len(prefixes) == 1:
        return prefixes.pop()
    return None


def decode_image(raw: bytes, where: str = "image") -> np.ndarray:
    """One encoded CIFAR-10 image (JPEG/PNG bytes) as uint8 RGB (32, 32, 3); DataError otherwise."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(raw)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:
        raise DataError(f"{where}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    if arr.shape != (32, 32, 3):
        raise DataError(
            f"{where}: CIFAR-10 images must be 32x32, got {arr.shape[1]}x{arr.shape[0]}"
        )
    return arr


_decode_image = decode_image


def _collect(items: Iterator[tuple[str, int, bytes]], where: str) -> Splits:
    """Decode (split, label, image bytes) items into uint8 arrays and int64 labels per split."""
    found: dict[str, list[tuple[int, np.ndarray]]] = {s: [] for s in SPLITS}
    for split, label, raw in items:
        found[split].append((label, _decode_image(raw, where)))
    out = {}
    for split in SPLITS:
        if not found[split]:
            raise DataError(f"{where}: no images under {split}/<class>/; {LAYOUTS_HELP}")
        labels = np.array([lab for lab, _ in found[split]], dtype=np.int64)
        images = np.stack([img for _, img in found[split]])
        out[split] = (images, labels)
    return out


def _take_sorted(entries: list[tuple[str, str, int]], limit_per_class: int | None) -> set[str]:
    """Names to read: per split and class, the first ``limit_per_class`` by file name."""
    keep: set[str] = set()
    counts: dict[tuple[str, int], int] = {}
    for name, split, label in sorted(entries, key=lambda e: (e[1], e[2], e[0])):
        n = counts.get((split, label), 0)
        if limit_per_class is None or n < limit_per_class:
            keep.add(name)
            counts[(split, label)] = n + 1
    return keep


# ---------------------------------------------------------------- sources


@dataclass(frozen=True)
class CifarSource:
    """A located CIFAR-10 source; cheap to fingerprint, :meth:`read` decodes it."""

    kind: Kind
    path: Path
    prefix: str = ""
    """Folder of the layout inside a tar archive or directory (``"cifar10-jpeg/"``)."""

    def describe(self) -> str:
        return f"{self.kind}:{self.path}"

    def fingerprint(self) -> str:
        """sha256 of the source: file bytes, or names + sizes + mtimes of an image folder."""
        digest = hashlib.sha256(f"cifar10-reader-v{READER_VERSION}:{self.kind}:".encode())
        if self.kind in ("pickle-tar", "folder-tar"):
            digest.update(sha256_file(self.path).encode())
        elif self.kind in ("pickle-dir", "torchvision"):
            folder = self.path if self.kind == "pickle-dir" else self.path / "cifar-10-batches-py"
            for split in SPLITS:
                for name in _PICKLE_FILES[split]:
                    if not (folder / name).is_file():
                        raise DataError(f"missing {folder / name}; {LAYOUTS_HELP}")
                    digest.update(f"{name}:{sha256_file(folder / name)}\n".encode())
        else:
            root = self.path / self.prefix if self.prefix else self.path
            for split in SPLITS:
                for f in sorted((root / split).rglob("*")):
                    if f.is_file():
                        st = f.stat()
                        rel = f.relative_to(root).as_posix()
                        digest.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def read(self, limit_per_class: int | None = None) -> CifarArrays:
        """Decode both splits, keeping at most ``limit_per_class`` images per class and split."""
        reader = {
            "pickle-dir": _read_pickle_dir,
            "pickle-tar": _read_pickle_tar,
            "folder-dir": _read_folder_dir,
            "folder-tar": _read_folder_tar,
            "torchvision": _read_torchvision,
        }[self.kind]
        splits = reader(self, limit_per_class)
        return CifarArrays(
            x_train=_check_images(splits["train"][0], self.describe()),
            y_train=splits["train"][1],
            x_test=_check_images(splits["test"][0], self.describe()),
            y_test=splits["test"][1],
            class_names=list(CLASS_NAMES),
        )


def _read_pickle_dir(src: CifarSource, limit: int | None) -> Splits:
    out = {}
    for split in SPLITS:
        batches = []
        for name in _PICKLE_FILES[split]:
            f = src.path / name
            if not f.is_file():
                raise DataError(f"missing {f}; {LAYOUTS_HELP}")
            batches.append(_decode_batch(f.read_bytes(), str(f)))
        out[split] = _join_batches(batches, limit)
    return out


def _read_pickle_tar(src: CifarSource, limit: int | None) -> Splits:
    raw: dict[str, bytes] = {}
    with tarfile.open(src.path) as tar:
        for member in tar:
            name = PurePosixPath(member.name).name
            if (
                member.isfile()
                and member.name.startswith(src.prefix)
                and name in (_PICKLE_FILES["train"] + _PICKLE_FILES["test"])
            ):
                fh = tar.extractfile(member)
                assert fh is not None
                raw[name] = fh.read()
    out = {}
    for split in SPLITS:
        missing = [n for n in _PICKLE_FILES[split] if n not in raw]
        if missing:
            raise DataError(f"{src.path}: missing {missing}; {LAYOUTS_HELP}")
        batches = [_decode_batch(raw[n], f"{src.path}:{n}") for n in _PICKLE_FILES[split]]
        out[split] = _join_batches(batches, limit)
    return out


def _folder_dir_bytes(
    src: CifarSource, limit: int | None, splits: Iterable[str]
) -> list[tuple[str, int, bytes]]:
    root = src.path / src.prefix if src.prefix else src.path
    entries = []
    for split in splits:
        for f in (root / split).rglob("*"):
            parsed = _parse_member(PurePosixPath(f.relative_to(root).as_posix()))
            if parsed and f.is_file():
                entries.append((str(f), *parsed))
    keep = _take_sorted(entries, limit)
    return [
        (split, label, Path(name).read_bytes())
        for name, split, label in sorted(entries, key=lambda e: (e[1], e[2], e[0]))
        if name in keep
    ]


def _folder_tar_bytes(
    src: CifarSource, limit: int | None, splits: Iterable[str]
) -> list[tuple[str, int, bytes]]:
    wanted = set(splits)
    with tarfile.open(src.path) as tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        entries = []
        for name in members:
            if name.startswith(src.prefix):
                parsed = _parse_member(PurePosixPath(name[len(src.prefix) :]))
                if parsed and parsed[0] in wanted:
                    entries.append((name, *parsed))
        keep = _take_sorted(entries, limit)
        raw: dict[str, bytes] = {}
        # One sequential pass over the (compressed) archive, in archive order.
        for name, member in members.items():
            if name in keep:
                fh = tar.extractfile(member)
                assert fh is not None
                raw[name] = fh.read()
    return [
        (split, label, raw[name])
        for name, split, label in sorted(entries, key=lambda e: (e[1], e[2], e[0]))
        if name in keep
    ]


def image_bytes(
    src: CifarSource, limit_per_class: int | None = None, splits: Iterable[str] = SPLITS
) -> list[tuple[str, int, bytes]]:
    """The still-encoded images of an image-folder source (directory or tar), as (split, label,
    JPEG/PNG bytes): per split and class the first ``limit_per_class`` by file name, in the order
    :meth:`CifarSource.read` decodes them (see :func:`decode_image`)."""
    if src.kind == "folder-dir":
        return _folder_dir_bytes(src, limit_per_class, splits)
    if src.kind == "folder-tar":
        return _folder_tar_bytes(src, limit_per_class, splits)
    raise DataError(f"{src.describe()} holds no encoded images (an image folder or tar does)")


def _read_folder_dir(src: CifarSource, limit: int | None) -> Splits:
    return _collect(iter(_folder_dir_bytes(src, limit, SPLITS)), str(src.path))


def _read_folder_tar(src: CifarSource, limit: int | None) -> Splits:
    return _collect(iter(_folder_tar_bytes(src, limit, SPLITS)), str(src.path))


def torchvision_available() -> bool:
    """True when ``import torchvision`` works; any failure (e.g. a torch mismatch) means absent."""
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


def _torchvision_cifar(root: Path, train: bool) -> Any:
    try:
        from torchvision.datasets import CIFAR10
    except Exception as exc:
        raise DataError(
            f"torchvision cannot be imported ({type(exc).__name__}: {exc}); pass a CIFAR-10 "
            f"source instead. {LAYOUTS_HELP}"
        ) from exc
    try:
        return CIFAR10(str(root), train=train, download=True)
    except Exception as exc:
        raise DataError(f"torchvision could not provide CIFAR-10 in {root}: {exc}") from exc


def _read_torchvision(src: CifarSource, limit: int | None) -> Splits:
    out = {}
    for split in SPLITS:
        ds = _torchvision_cifar(src.path, train=split == "train")
        if list(ds.classes) != list(CLASS_NAMES):
            raise DataError(f"torchvision CIFAR10 classes {ds.classes} differ from {CLASS_NAMES}")
        x = np.asarray(ds.data, dtype=np.uint8)
        y = np.asarray(ds.targets, dtype=np.int64)
        idx = _limit(y, limit)
        out[split] = (x[idx], y[idx])
    return out


def torchvision_source(root: str | os.PathLike[str]) -> CifarSource:
    """Download CIFAR-10 with torchvision into ``root`` (if needed) and return it as a source."""
    path = Path(root).expanduser()
    _torchvision_cifar(path, train=True)
    _torchvision_cifar(path, train=False)
    return CifarSource("torchvision", path)


def open_cifar10(
    source: str | os.PathLike[str], torchvision_root: Path | None = None
) -> CifarSource:
    """Recognise the layout of ``source`` (see module docstring); unknown layout → DataError."""
    if str(source) == "torchvision":
        if torchvision_root is None:
            raise DataError("source 'torchvision' needs a download folder")
        return torchvision_source(torchvision_root)
    path = Path(source).expanduser()
    if path.is_dir():
        pickle_dir = _find_pickle_dir(path)
        if pickle_dir is not None:
            return CifarSource("pickle-dir", pickle_dir)
        rels = (p.relative_to(path).as_posix() for p in path.glob("*/*/*") if p.is_file())
        prefix = _folder_root(rels)
        if prefix is None:
            rels = (p.relative_to(path).as_posix() for p in path.glob("*/*/*/*") if p.is_file())
            prefix = _folder_root(rels)
        if prefix is not None:
            return CifarSource("folder-dir", path, prefix)
        raise DataError(f"{path}: unknown CIFAR-10 layout; {LAYOUTS_HELP}")
    if path.is_file():
        try:
            with tarfile.open(path) as tar:
                names = [m.name for m in tar.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError) as exc:
            raise DataError(f"{path}: not a readable tar archive ({exc}); {LAYOUTS_HELP}") from exc
        for name in names:
            if PurePosixPath(name).name == "data_batch_1":
                return CifarSource("pickle-tar", path, name[: -len("data_batch_1")])
        prefix = _folder_root(names)
        if prefix is not None:
            return CifarSource("folder-tar", path, prefix)
        raise DataError(f"{path}: unknown CIFAR-10 layout inside the archive; {LAYOUTS_HELP}")
    raise DataError(f"CIFAR-10 source {path} does not exist; {LAYOUTS_HELP}")


def read_cifar10(source: str | os.PathLike[str], limit_per_class: int | None = None) -> CifarArrays:
    """Read CIFAR-10 from any accepted layout (see :func:`open_cifar10`)."""
    return open_cifar10(source).read(limit_per_class)
