"""Classifier heads as flat parameter vectors: init, forward, batched evaluation, torch training.

Parameter layout (the wire format depends on it)
------------------------------------------------
A model is one flat ``float32`` vector. For each linear layer, in order from input to output::

    weight  (out, in)  row-major (C order): weight[o, i] at offset + o * in + i
    bias    (out,)     at offset + out * in + o

so a layer takes ``out * in + out`` floats and the next layer starts right after its bias. This is
exactly ``parameters_to_vector(nn.Sequential(Linear, ReLU, Linear, ...).parameters())`` in torch.
A layer computes ``y = x @ weight.T + bias``; ReLU sits between layers, never after the last one,
and the output is raw logits (softmax cross-entropy loss).

Heads: ``linear`` is one layer ``in_dim -> num_classes``; ``mlp`` is
``in_dim -> hidden[0] -> ... -> hidden[-1] -> num_classes`` (paper: 160 -> 128 -> 64 -> 10).

Only :class:`TorchTrainer` needs torch, and it imports it lazily: importing this module,
``init_params``, ``forward`` and ``evaluate`` are numpy only, so a robot that does not train
loads torch only if its dataset needs it (``cifar10-mcunet`` imports :mod:`gossip_learning.vision`).
:class:`gossip_learning.learning.numpy_trainer.NumpyTrainer` trains the same heads without torch
(one, or many robots' at once) on the same minibatches (``learning.batching.batch_order``), equal
to TorchTrainer to float32 rounding.
"""

from __future__ import annotations

import itertools
import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from gossip_learning.config import INIT_SCHEMES
from gossip_learning.errors import ConfigError, DataError
from gossip_learning.learning.batching import batch_order

__all__ = [
    "HEAD_KINDS",
    "INIT_SCHEMES",
    "OPTIMIZERS",
    "HeadSpec",
    "TorchTrainer",
    "evaluate",
    "fold_standardizer",
    "forward",
    "init_params",
    "predict",
    "unpack",
]

HEAD_KINDS = ("linear", "mlp")
OPTIMIZERS = ("adam", "sgd")

# Upper bound on the elements of one activation block in ``evaluate`` (float32: 4 bytes each).
_EVAL_BLOCK_ELEMS = 1 << 22


@dataclass(frozen=True)
class HeadSpec:
    """Shape of a classifier head; ``hidden`` is used only by ``kind="mlp"``."""

    kind: str
    in_dim: int
    num_classes: int
    hidden: tuple[int, ...] = (128, 64)

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ConfigError(
                "learning.head", f"unknown head '{self.kind}'; allowed: {', '.join(HEAD_KINDS)}"
            )
        for name, value in (("in_dim", self.in_dim), ("num_classes", self.num_classes)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError("learning.head", f"{name} must be an integer >= 1, got {value!r}")
        object.__setattr__(self, "in_dim", int(self.in_dim))
        object.__setattr__(self, "num_classes", int(self.num_classes))
        try:
            hidden = tuple(self.hidden)
        except TypeError:
            raise ConfigError(
                "learning.hidden", f"must be a list of layer widths, got {self.hidden!r}"
            ) from None
        for h in hidden:
            if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
                raise ConfigError(
                    "learning.hidden", f"layer widths must be integers >= 1, got {h!r}"
                )
        if self.kind == "mlp" and not hidden:
            raise ConfigError("learning.hidden", "an mlp head needs at least one hidden layer")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))

    def layer_sizes(self) -> list[tuple[int, int]]:
        """``(in, out)`` of each linear layer, input first."""
        widths = [self.in_dim, *(self.hidden if self.kind == "mlp" else ()), self.num_classes]
        return list(itertools.pairwise(widths))

    def num_params(self) -> int:
        """Length of the flat parameter vector."""
        return sum(o * i + o for i, o in self.layer_sizes())

    def canonical(self) -> str:
        """Canonical text of the spec (``hidden`` omitted for linear heads)."""
        hidden = ",".join(str(h) for h in self.hidden) if self.kind == "mlp" else ""
        return (
            f"head/v1;kind={self.kind};in={self.in_dim};classes={self.num_classes};hidden={hidden}"
        )

    def version(self) -> int:
        """Stable u32 identifying the layout (CRC-32 of :meth:`canonical`)."""
        return zlib.crc32(self.canonical().encode("ascii")) & 0xFFFFFFFF


def init_params(spec: HeadSpec, seed: int, scheme: str = "torch_default") -> np.ndarray:
    """A head's initial parameters drawn with numpy from ``np.random.default_rng(seed)``, per
    layer the weight first, then the bias.

    ``torch_default``: PyTorch's ``nn.Linear`` init, weight and bias ~ U(±1/sqrt(fan_in))
    (Kaiming-uniform with a=sqrt(5) gives exactly that weight bound). ``kaiming_normal``:
    ``nn.init.kaiming_normal_`` (fan_in, ReLU gain) on the weight, N(0, 2/fan_in), and a zero
    bias (no draw).
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(
            "learning.init_scheme", f"{scheme!r} is not allowed; allowed: {', '.join(INIT_SCHEMES)}"
        )
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    for fan_in, fan_out in spec.layer_sizes():
        if scheme == "kaiming_normal":
            parts.append(rng.normal(0.0, math.sqrt(2.0 / fan_in), size=fan_out * fan_in))
            parts.append(np.zeros(fan_out))
            continue
        bound = 1.0 / math.sqrt(fan_in)
        parts.append(rng.uniform(-bound, bound, size=fan_out * fan_in))
        parts.append(rng.uniform(-bound, bound, size=fan_out))
    return np.concatenate(parts).astype(np.float32)


def _check_params(spec: HeadSpec, params: np.ndarray) -> np.ndarray:
    p = np.asarray(params, dtype=np.float32)
    if p.ndim not in (1, 2) or p.shape[-1] != spec.num_params():
        raise ValueError(
            f"params of shape {p.shape} do not fit head {spec.canonical()}: "
            f"expected (P,) or (R, P) with P = {spec.num_params()}"
        )
    return p


def _check_features(spec: HeadSpec, X: np.ndarray) -> np.ndarray:
    x = np.asarray(X, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != spec.in_dim:
        raise DataError(f"features of shape {x.shape} do not fit head input (n, {spec.in_dim})")
    return x


def unpack(spec: HeadSpec, params: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Views ``[(weight (..., out, in), bias (..., out)), ...]`` into params (P,) or (R, P)."""
    p = _check_params(spec, params)
    lead = p.shape[:-1]
    layers = []
    off = 0
    for fan_in, fan_out in spec.layer_sizes():
        w = p[..., off : off + fan_out * fan_in].reshape(*lead, fan_out, fan_in)
        off += fan_out * fan_in
        b = p[..., off : off + fan_out]
        off += fan_out
        layers.append((w, b))
    return layers


def forward(spec: HeadSpec, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Logits (n, num_classes) float32 of one model (params (P,)) on features X (n, in_dim)."""
    p = _check_params(spec, params)
    if p.ndim != 1:
        raise ValueError("forward takes one model of shape (P,); use evaluate for many")
    h = _check_features(spec, X)
    layers = unpack(spec, p)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            np.maximum(h, 0.0, out=h)
    return h.astype(np.float32, copy=False)


def fold_standardizer(
    spec: HeadSpec, params: np.ndarray, mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """Params that act on raw features as ``params`` act on ``(X - mean) / std``.

    Folds the affine standardisation into the first layer (``W / std``, ``b - W @ (mean / std)``),
    so models with per-robot ("local") statistics can be evaluated in one batched call on raw X.
    ``params`` (P,) or (R, P); ``mean``/``std`` (d,) or (R, d). std is floored at 1e-6.
    """
    p = _check_params(spec, params)
    out = p.copy()
    lead = p.shape[:-1]
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64), (*lead, spec.in_dim))
    sd = np.maximum(np.asarray(std, dtype=np.float64), 1e-6)
    sd = np.broadcast_to(sd, (*lead, spec.in_dim))
    w, b = unpack(spec, p)[0]
    w_new = w / sd[..., None, :]
    b_new = b - np.einsum("...oi,...i->...o", w_new, m)
    fan_in, fan_out = spec.layer_sizes()[0]
    out[..., : fan_out * fan_in] = w_new.reshape(*lead, fan_out * fan_in)
    out[..., fan_out * fan_in : fan_out * fan_in + fan_out] = b_new
    return out


def predict(spec: HeadSpec, params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Predicted class (n,) int64 of one model."""
    return np.argmax(forward(spec, params, X), axis=1).astype(np.int64)


def evaluate(
    spec: HeadSpec,
    params: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    chunk: int = 4096,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and mean cross-entropy of each model: two float64 arrays of shape (R,).

    ``params`` is (R, P) for R models or (P,) for one (then both arrays have shape (1,)). Models are
    evaluated in blocks, samples in chunks of at most ``chunk``, so memory stays near 16 MiB per
    activation block (a few such blocks live at once) whatever R and n. Empty X gives NaN.
    ``threads`` caps the BLAS threads for this call (via threadpoolctl, when installed); use 1 when
    other busy processes share the cores, where multithreaded BLAS slows down many-fold.
    """
    if threads is None:
        return _evaluate(spec, params, X, y, chunk)
    if threads < 1:
        raise ValueError(f"threads must be >= 1 when given, got {threads}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the call just runs with the default threads
        return _evaluate(spec, params, X, y, chunk)
    with threadpool_limits(limits=int(threads), user_api="blas"):
        return _evaluate(spec, params, X, y, chunk)


def _evaluate(
    spec: HeadSpec, params: np.ndarray, X: np.ndarray, y: np.ndarray, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    p = _check_params(spec, params)
    if p.ndim == 1:
        p = p[None, :]
    x = _check_features(spec, X)
    labels = np.asarray(y)
    if labels.shape != (x.shape[0],):
        raise DataError(f"labels of shape {labels.shape} do not match {x.shape[0]} samples")
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(
            f"labels must lie in [0, {spec.num_classes}), got {labels.min()}..{labels.max()}"
        )
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    n_models, n = p.shape[0], x.shape[0]
    if n == 0:
        nan = np.full(n_models, np.nan)
        return nan, nan.copy()

    step = min(chunk, n)
    widest = max(o for _, o in spec.layer_sizes())
    block = max(1, min(n_models, _EVAL_BLOCK_ELEMS // (step * widest)))
    correct = np.zeros(n_models, dtype=np.int64)
    loss_sum = np.zeros(n_models, dtype=np.float64)
    for r0 in range(0, n_models, block):
        layers = unpack(spec, p[r0 : r0 + block])
        # Transposed contiguous weights (m, in, out) for batched matmul, built once per block.
        wts = [(np.ascontiguousarray(w.transpose(0, 2, 1)), b[:, None, :]) for w, b in layers]
        m, _, out0 = wts[0][0].shape
        # First layer as one GEMM over all models of the block: (k, in) @ (in, m * out).
        w0 = np.ascontiguousarray(layers[0][0].transpose(2, 0, 1)).reshape(spec.in_dim, m * out0)
        b0 = wts[0][1]
        for s0 in range(0, n, step):
            xc, yc = x[s0 : s0 + step], labels[s0 : s0 + step]
            h = np.empty((m, len(xc), out0), dtype=np.float32)
            np.add((xc @ w0).reshape(len(xc), m, out0).transpose(1, 0, 2), b0, out=h)
            for w, b in wts[1:]:
                np.maximum(h, 0.0, out=h)
                h = np.matmul(h, w)
                h += b
            top = h.max(axis=2, keepdims=True)
            lse = np.log(np.exp(h - top).sum(axis=2)) + top[..., 0]
            true = np.take_along_axis(h, np.broadcast_to(yc[None, :, None], (m, len(yc), 1)), 2)
            loss_sum[r0 : r0 + m] += (lse - true[..., 0]).sum(axis=1, dtype=np.float64)
            correct[r0 : r0 + m] += (h.argmax(axis=2) == yc[None, :]).sum(axis=1)
    return correct / n, loss_sum / n


def _check_training_config(
    lr: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    optimizer: str,
    threads: int | None,
) -> None:
    """Hyper-parameter checks shared by every trainer: ConfigError naming the config key."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(
            "learning.optimizer",
            f"unknown optimizer '{optimizer}'; allowed: {', '.join(OPTIMIZERS)}",
        )
    if not lr > 0 or not math.isfinite(lr):
        raise ConfigError("learning.lr", f"must be a positive number, got {lr!r}")
    if not weight_decay >= 0 or not math.isfinite(weight_decay):
        raise ConfigError("learning.weight_decay", f"must be >= 0, got {weight_decay!r}")
    if int(epochs) != epochs or epochs < 0:
        raise ConfigError("learning.epochs", f"must be an integer >= 0, got {epochs!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ConfigError("learning.batch_size", f"must be an integer >= 1, got {batch_size!r}")
    if threads is not None and threads < 1:
        raise ConfigError("experiment.threads", f"must be >= 1 when given, got {threads!r}")


def _training_data(spec: HeadSpec, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, in_dim) float32 and labels (n,) int64 of one robot; DataError if they misfit."""
    x = _check_features(spec, X)
    labels = np.asarray(y)
    if labels.shape != (x.shape[0],):
        raise DataError(f"labels of shape {labels.shape} do not match {x.shape[0]} samples")
    return x, labels.astype(np.int64, copy=False)


def _check_label_range(spec: HeadSpec, labels: np.ndarray) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        c = spec.num_classes
        raise DataError(f"labels must lie in [0, {c}), got {labels.min()}..{labels.max()}")


class TrainerSettings:
    """Hyper-parameters every training engine takes, checked once (ConfigError names the config
    key); an engine sets itself up in :meth:`_setup`."""

    def __init__(
        self,
        spec: HeadSpec,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        epochs: int = 2,
        batch_size: int = 128,
        optimizer: str = "adam",
        threads: int | None = None,
    ) -> None:
        _check_training_config(lr, weight_decay, epochs, batch_size, optimizer, threads)
        self.spec = spec
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.threads = None if threads is None else int(threads)
        self._setup()

    def _setup(self) -> None:
        """Engine-specific set-up after the settings are checked."""


class TorchTrainer(TrainerSettings):
    """Local training of a head with torch; one reusable module, a fresh optimiser every call.

    ``threads`` calls ``torch.set_num_threads`` (process-wide). Heads and batches are tiny, so
    ``threads=1`` is as fast on an idle machine and many times faster when other processes keep
    the cores busy (torch's thread pool then stalls).
    """

    def _setup(self) -> None:
        import torch  # lazy: only training needs torch

        if self.threads is not None:
            torch.set_num_threads(self.threads)
        self._torch: Any = torch
        mods: list[Any] = []
        sizes = self.spec.layer_sizes()
        for k, (fan_in, fan_out) in enumerate(sizes):
            # skip_init: train() overwrites the weights, so leave torch's global RNG alone.
            mods.append(torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out))
            if k < len(sizes) - 1:
                mods.append(torch.nn.ReLU())
        self.module: Any = torch.nn.Sequential(*mods)

    def train(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int
    ) -> tuple[np.ndarray, float]:
        """Train from ``params`` on (X, y); return (new params, mean loss of the last epoch).

        The new params are a float32 copy. Minibatches follow
        :func:`~gossip_learning.learning.batching.batch_order` ``(seed, n, epochs)`` (numpy), the
        order :class:`~gossip_learning.learning.numpy_trainer.NumpyTrainer` uses too. Empty X
        (or epochs=0) returns a copy of ``params`` and NaN.
        """
        torch = self._torch
        p = _check_params(self.spec, params)
        if p.ndim != 1:
            raise ValueError("train takes one model of shape (P,)")
        x, labels = _training_data(self.spec, X, y)
        n = x.shape[0]
        if n == 0 or self.epochs == 0:
            return p.copy(), float("nan")
        _check_label_range(self.spec, labels)

        xt = torch.tensor(x, dtype=torch.float32)
        yt = torch.tensor(labels)
        module = self.module
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.tensor(p), module.parameters())
        if self.optimizer == "adam":
            opt = torch.optim.Adam(module.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.SGD(
                module.parameters(), lr=self.lr, momentum=0.0, weight_decay=self.weight_decay
            )
        orders = batch_order(seed, n, self.epochs)
        loss_fn = torch.nn.functional.cross_entropy
        bs = self.batch_size
        epoch_loss = float("nan")
        module.train()
        for epoch_order in orders:
            order = torch.from_numpy(epoch_order)
            total = 0.0
            for s0 in range(0, n, bs):
                idx = order[s0 : s0 + bs]
                loss = loss_fn(module(xt[idx]), yt[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            epoch_loss = total / n
        with torch.no_grad():
            out = torch.nn.utils.parameters_to_vector(module.parameters())
        return out.numpy().astype(np.float32, copy=True), epoch_loss
