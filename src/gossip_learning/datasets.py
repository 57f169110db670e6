"""Datasets as feature vectors + labels: built-ins, ``.npz`` files, standardisation and a registry.

Built-in datasets: ``digits`` (scikit-learn's bundled 8x8 handwritten digits, no download),
``synthetic`` (Gaussian blobs) and ``npz`` (cached features in a file). Other modules add theirs
with :func:`register_dataset`; everyone loads through :func:`load_dataset`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gossip_learning.errors import ConfigError, DataError

MAX_ELEMENTS = 500_000_000  # numbers in one generated split (2 GB of float32)

__all__ = [
    "STANDARDIZE_MODES",
    "Dataset",
    "available_datasets",
    "fit_standardizer",
    "load_dataset",
    "load_digits",
    "load_npz",
    "make_synthetic",
    "register_dataset",
    "standardize",
    "standardize_with",
]

STANDARDIZE_MODES = ("none", "global", "local")
STD_FLOOR = 1e-6


@dataclass
class Dataset:
    """Train/test features (float32, (n, d)) and labels (int64, (n,)) of one classification task.

    Integer labels are converted to int64 and features to float32 on construction; call
    :meth:`validate` to check the rest.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for attr in ("X_train", "X_test"):
            arr = np.asarray(getattr(self, attr))
            if arr.dtype.kind in "fiu":
                arr = arr.astype(np.float32, copy=False)
            setattr(self, attr, arr)
        for attr in ("y_train", "y_test"):
            arr = np.asarray(getattr(self, attr))
            if arr.dtype.kind in "iu":
                arr = arr.astype(np.int64, copy=False)
            setattr(self, attr, arr)
        if not self.class_names and isinstance(self.num_classes, (int, np.integer)):
            self.class_names = [str(c) for c in range(int(self.num_classes))]

    @property
    def dim(self) -> int:
        """Feature dimension d."""
        return int(self.X_train.shape[1])

    def validate(self) -> Dataset:
        """Raise DataError naming the first problem found; return self when all is well."""
        who = f"dataset '{self.name}'"
        c = self.num_classes
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise DataError(f"{who}: num_classes must be an integer >= 1, got {c!r}")
        if len(self.class_names) != c:
            raise DataError(f"{who}: {len(self.class_names)} class_names for {c} classes")
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if X.ndim != 2:
                raise DataError(f"{who}: X_{split} must be 2-D (n, d), got shape {X.shape}")
            if X.dtype.kind != "f":
                raise DataError(f"{who}: X_{split} must hold numbers, got dtype {X.dtype}")
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise DataError(
                    f"{who}: y_{split} must have shape ({X.shape[0]},) to match X_{split}, "
                    f"got {y.shape}"
                )
            if X.shape[0] == 0 or X.shape[1] == 0:
                raise DataError(f"{who}: X_{split} is empty (shape {X.shape})")
            if y.dtype.kind not in "iu":
                raise DataError(f"{who}: y_{split} must hold integer labels, got dtype {y.dtype}")
            if y.min() < 0 or y.max() >= c:
                raise DataError(
                    f"{who}: y_{split} has labels {y.min()}..{y.max()} outside [0, {c})"
                )
            if not np.isfinite(X).all():
                bad = int((~np.isfinite(X)).any(axis=1).sum())
                raise DataError(f"{who}: X_{split} has NaN or inf features in {bad} rows")
        if self.X_test.shape[1] != self.X_train.shape[1]:
            raise DataError(
                f"{who}: X_test has {self.X_test.shape[1]} features, "
                f"X_train {self.X_train.shape[1]}"
            )
        return self


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled digits (1,797 x 64, 10 classes) scaled to [0, 1], stratified split."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError("data.test_fraction", f"must lie in (0, 1), got {test_fraction!r}")
    try:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split
    except ModuleNotFoundError:
        raise ConfigError(
            "data.source",
            "digits needs scikit-learn (the experiment extra): "
            "pip install 'gossip_learning[experiment]'",
        ) from None

    bunch = sk_load_digits()
    X = (np.asarray(bunch.data, dtype=np.float64) / 16.0).astype(np.float32)
    y = np.asarray(bunch.target, dtype=np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    names = [str(n) for n in bunch.target_names]
    return Dataset("digits", X_tr, y_tr, X_te, y_te, len(names), names).validate()


def make_synthetic(
    num_train: int = 2000,
    num_test: int = 500,
    dim: int = 16,
    num_classes: int = 4,
    separation: float = 4.0,
    seed: int = 0,
) -> Dataset:
    """Gaussian blobs: class means at ``separation`` along random unit directions, unit variance.

    Labels are balanced (cycled, then shuffled); train and test share the means.
    """
    for key, value, low in (
        ("num_train", num_train, 1),
        ("num_test", num_test, 1),
        ("dim", dim, 1),
        ("num_classes", num_classes, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"data.{key}", f"must be an integer >= {low}, got {value!r}")
    for key, rows in (("num_train", num_train), ("num_test", num_test)):
        if rows * dim > MAX_ELEMENTS:
            raise ConfigError(
                f"data.{key}",
                f"{rows} samples x {dim} features is over {MAX_ELEMENTS:,} numbers: use fewer",
            )
    if not np.isfinite(separation) or separation < 0:
        raise ConfigError("data.separation", f"must be a finite number >= 0, got {separation!r}")
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(num_classes, dim))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    means = dirs * separation

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
        X = means[y] + rng.normal(size=(n, dim))
        return X.astype(np.float32), y

    X_tr, y_tr = draw(num_train)
    X_te, y_te = draw(num_test)
    names = [f"class{c}" for c in range(num_classes)]
    return Dataset("synthetic", X_tr, y_tr, X_te, y_te, num_classes, names).validate()


_NPZ_FORM = (
    "expected arrays X_train (n, d) float, y_train (n,) int, X_test (m, d) float, y_test (m,) int, "
    "optional class_names (C,) str and num_classes ()"
)


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """Load X_train, y_train, X_test, y_test (optional class_names, num_classes) from ``path``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file; {_NPZ_FORM}")
    try:
        npz = np.load(p, allow_pickle=False)
    except Exception as exc:  # zipfile/pickle/OS errors all mean the same to the user
        raise DataError(f"{p}: not a readable .npz file ({exc}); {_NPZ_FORM}") from exc
    with npz:
        arrays: dict[str, np.ndarray] = {}
        for key in ("X_train", "y_train", "X_test", "y_test"):
            if key not in npz.files:
                raise DataError(f"{p}: missing key '{key}' (has {sorted(npz.files)}); {_NPZ_FORM}")
            arrays[key] = npz[key]
        names = [str(s) for s in npz["class_names"]] if "class_names" in npz.files else []
        given_c = int(npz["num_classes"]) if "num_classes" in npz.files else None
    for key in ("X_train", "X_test"):
        if arrays[key].ndim != 2 or arrays[key].dtype.kind not in "fiu":
            raise DataError(
                f"{p}: key '{key}' has shape {arrays[key].shape} dtype {arrays[key].dtype}; "
                f"{_NPZ_FORM}"
            )
    for key in ("y_train", "y_test"):
        y = arrays[key]
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise DataError(f"{p}: key '{key}' has shape {y.shape} dtype {y.dtype}; {_NPZ_FORM}")
    if given_c is not None:
        num_classes = given_c
    elif names:
        num_classes = len(names)
    else:
        top = max(
            (int(arrays[k].max()) for k in ("y_train", "y_test") if arrays[k].size), default=0
        )
        num_classes = top + 1
    ds = Dataset(
        p.stem,
        arrays["X_train"],
        arrays["y_train"],
        arrays["X_test"],
        arrays["y_test"],
        num_classes,
        names,
    )
    try:
        return ds.validate()
    except DataError as exc:
        raise DataError(f"{p}: {exc}; {_NPZ_FORM}") from None


def fit_standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (floored at 1e-6) of X (n, d), both float32 of shape (d,)."""
    x = np.asarray(X)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"cannot fit a standardizer on features of shape {x.shape}")
    mean = x.mean(axis=0, dtype=np.float64)
    std = np.maximum(x.std(axis=0, dtype=np.float64), STD_FLOOR)
    return mean.astype(np.float32), std.astype(np.float32)


def standardize_with(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(X - mean) / std`` as float32 (std is floored at 1e-6)."""
    x = np.asarray(X, dtype=np.float32)
    m = np.asarray(mean, dtype=np.float32)
    s = np.maximum(np.asarray(std, dtype=np.float32), np.float32(STD_FLOOR))
    if x.ndim != 2 or m.shape != (x.shape[1],) or s.shape != (x.shape[1],):
        raise DataError(
            f"standardize: features {x.shape} do not fit mean {m.shape} and std {s.shape}"
        )
    return ((x - m) / s).astype(np.float32, copy=False)


def standardize(ds: Dataset, mode: str) -> Dataset:
    """Standardise features by ``mode``: ``none`` or ``local`` return ``ds`` itself; ``global``
    returns a new Dataset scaled by the train mean/std (train and test alike).

    ``local`` (per-robot statistics) cannot be done here: the caller applies
    :func:`fit_standardizer` / :func:`standardize_with` to each robot's own data.
    """
    if mode not in STANDARDIZE_MODES:
        raise ConfigError(
            "data.standardize",
            f"unknown mode '{mode}'; allowed: {', '.join(STANDARDIZE_MODES)}",
        )
    if mode != "global":
        return ds
    mean, std = fit_standardizer(ds.X_train)
    return dataclasses.replace(
        ds,
        X_train=standardize_with(ds.X_train, mean, std),
        X_test=standardize_with(ds.X_test, mean, std),
    )


_REGISTRY: dict[str, Callable[..., Dataset]] = {}


def register_dataset(name: str, loader: Callable[..., Dataset], *, replace: bool = False) -> None:
    """Make ``loader`` available as ``load_dataset(name, **params)``.

    Registering a taken name raises ValueError unless ``replace`` is true.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not loader:
        raise ValueError(f"dataset '{name}' is already registered")
    _REGISTRY[name] = loader


def loader_of(name: str) -> Callable[..., Dataset] | None:
    """The loader registered as ``name``, or None."""
    return _REGISTRY.get(name)


def available_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def load_dataset(name: str, **params: Any) -> Dataset:
    """Load the registered dataset ``name`` with ``params``; the result is validated."""
    loader = _REGISTRY.get(name)
    if loader is None:
        raise ConfigError(
            "data.dataset", f"unknown dataset '{name}'; allowed: {', '.join(available_datasets())}"
        )
    try:
        sig = inspect.signature(loader)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**params)
        except TypeError as exc:
            accepted = ", ".join(
                p.name for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD
            )
            raise ConfigError(
                "data.params", f"dataset '{name}': {exc}; accepted: {accepted or 'none'}"
            ) from None
    ds = loader(**params)
    if not isinstance(ds, Dataset):
        raise DataError(f"dataset '{name}': loader returned {type(ds).__name__}, not a Dataset")
    return ds.validate()


register_dataset("digits", load_digits)
register_dataset("synthetic", make_synthetic)
register_dataset("npz", load_npz)
