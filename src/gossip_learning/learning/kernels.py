"""One batched training run of ``k`` stacked heads: forward, hand-written backward, Adam or SGD.

Every step does one ``np.matmul`` per layer and direction over all robots still training (a prefix
of the stack, see :class:`~gossip_learning.learning.batching.BatchPlan`); the optimiser then
updates their rows of the flat ``(k, P)`` parameter block in cache-sized chunks. All arithmetic
is float32 and follows torch's operation order (``nn.Linear``, ``cross_entropy`` with mean
reduction, ``torch.optim.Adam``/``SGD`` single-tensor updates) so results agree to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gossip_learning.learning.batching import BatchPlan

__all__ = ["OptimizerConfig", "Workspace", "run_group"]

# Elements per chunk of the elementwise optimiser update (4 float32 arrays of 256 KiB fit in L2).
_CHUNK = 1 << 16

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@dataclass(frozen=True)
class OptimizerConfig:
    """Optimiser and its hyper-parameters (validated by the trainer)."""

    kind: str  # "adam" or "sgd"
    lr: float
    weight_decay: float


class Workspace:
    """Flat float32 scratch arrays reused across steps, groups and calls, grown on demand."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], zero: bool = False) -> np.ndarray:
        """A C-contiguous float32 view of ``shape`` on buffer ``name`` (contents undefined)."""
        size = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < size:
            buf = np.empty(max(size, 1), dtype=np.float32)
            self._bufs[name] = buf
        view = buf[:size].reshape(shape)
        if zero:
            view.fill(0.0)
        return view


def _layer_views(
    flat: np.ndarray, sizes: list[tuple[int, int]], k: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weight ``(k, out, in)`` and bias ``(k, out)`` views of the first ``k`` rows of ``flat``."""
    views, off = [], 0
    for fan_in, fan_out in sizes:
        w = flat[:k, off : off + fan_out * fan_in].reshape(k, fan_out, fan_in)
        off += fan_out * fan_in
        views.append((w, flat[:k, off : off + fan_out]))
        off += fan_out
    return views


def run_group(
    sizes: list[tuple[int, int]],
    params: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
    plan: BatchPlan,
    opt: OptimizerConfig,
    ws: Workspace,
) -> np.ndarray:
    """Train ``params`` (k, P) float32 C-contiguous in place; mean loss of each robot's last epoch.

    ``xs`` (rows, in) float32 and ``ys`` (rows,) int64 hold every robot's samples plus the padding
    row the plan points at; ``sizes`` are the head's ``(in, out)`` layer sizes.
    """
    k0, n_params = params.shape
    grads = ws.get("grad", (k0, n_params))
    state = []  # Adam's first and second moments, fresh every run (as a new torch optimiser)
    if opt.kind == "adam":
        state = [ws.get(name, (k0 * n_params,), zero=True) for name in ("m", "v")]
    loss_sum = np.zeros(k0, dtype=np.float64)
    n_layers = len(sizes)
    classes = sizes[-1][1]
    for t in range(plan.total_steps):
        k = plan.active(t)
        rows, counts, last = plan.step(t, k)
        width = rows.shape[1]
        layers = _layer_views(params, sizes, k)
        # forward: acts[0] the inputs, acts[l + 1] the (ReLU'd) output of layer l
        acts = [ws.get("x", (k, width, sizes[0][0]))]
        np.take(xs, rows, axis=0, out=acts[0], mode="clip")  # rows are valid
        for li, (w, b) in enumerate(layers):
            h = ws.get(f"a{li}", (k, width, w.shape[1]))
            np.matmul(acts[-1], w.transpose(0, 2, 1), out=h)
            h += b[:, None, :]
            if li < n_layers - 1:
                np.maximum(h, 0.0, out=h)
            acts.append(h)
        # softmax cross-entropy; padded rows weigh 0, real ones 1 / (robot's batch size)
        logits = acts[-1]
        logits -= logits.max(axis=2, keepdims=True)
        target = ys[rows]
        picked = np.take_along_axis(logits, target[:, :, None], axis=2)[:, :, 0]
        probs = np.exp(logits, out=ws.get("p", logits.shape))
        total = probs.sum(axis=2)
        inv = (np.float32(1.0) / counts.astype(np.float32))[:, None]
        weight = np.where(np.arange(width)[None, :] < counts[:, None], inv, np.float32(0.0))
        per_sample = np.log(total) - picked
        batch_loss = (per_sample * weight).sum(axis=1, dtype=np.float32)
        loss_sum[:k] += np.where(last, batch_loss.astype(np.float64) * counts, 0.0)
        probs /= total[:, :, None]
        flat = probs.reshape(-1)
        flat[np.arange(k * width) * classes + target.reshape(-1)] -= 1.0
        probs *= weight[:, :, None]
        # backward into the first k rows of grads
        delta = probs
        for li in range(n_layers - 1, -1, -1):
            gw, gb = _layer_views(grads, sizes, k)[li]
            np.matmul(delta.transpose(0, 2, 1), acts[li], out=gw)
            np.sum(delta, axis=1, out=gb)
            if li > 0:
                back = ws.get(f"d{li}", acts[li].shape)
                np.matmul(delta, layers[li][0], out=back)
                back *= acts[li] > 0
                delta = back
        _optimizer_step(opt, params.reshape(-1)[: k * n_params], grads, state, t + 1, ws)
    return loss_sum


def _optimizer_step(
    opt: OptimizerConfig,
    p: np.ndarray,
    grads: np.ndarray,
    state: list[np.ndarray],
    step: int,
    ws: Workspace,
) -> None:
    """One update of ``p``, the flat parameters of the robots still training: they all take their
    ``step``-th step (robots that ran out of batches are not in ``p``: no update, no step)."""
    n = p.size
    g = grads.reshape(-1)[:n]
    wd = opt.weight_decay
    tmp = ws.get("t1", (min(n, _CHUNK),))
    if opt.kind == "sgd":
        neg_lr = -opt.lr
        for s in range(0, n, _CHUNK):
            pp, gg, a = p[s : s + _CHUNK], g[s : s + _CHUNK], tmp[: min(_CHUNK, n - s)]
            if wd != 0:
                np.multiply(pp, wd, out=a)
                gg += a
            np.multiply(gg, neg_lr, out=a)
            pp += a
        return
    tmp2 = ws.get("t2", (min(n, _CHUNK),))
    m, v = state[0][:n], state[1][:n]
    bc1 = 1 - _BETA1**step
    bc2_sqrt = (1 - _BETA2**step) ** 0.5
    neg_step = -(opt.lr / bc1)
    for s in range(0, n, _CHUNK):
        e = min(s + _CHUNK, n)
        pp, gg, mm, vv = p[s:e], g[s:e], m[s:e], v[s:e]
        a, b = tmp[: e - s], tmp2[: e - s]
        if wd != 0:  # L2 weight decay: grad + wd * param
            np.multiply(pp, wd, out=a)
            gg += a
        np.subtract(gg, mm, out=a)  # m.lerp_(g, 1 - beta1) = m + (1 - beta1) * (g - m)
        a *= 1 - _BETA1
        mm += a
        np.multiply(gg, 1 - _BETA2, out=a)  # v * beta2 + ((1 - beta2) * g) * g
        a *= gg
        vv *= _BETA2
        vv += a
        np.sqrt(vv, out=a)  # denom = sqrt(v) / sqrt(bc2) + eps
        a /= bc2_sqrt
        a += _EPS
        np.multiply(mm, neg_step, out=b)  # p + (-lr / bc1) * m / denom
        b /= a
        pp += b
