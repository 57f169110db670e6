"""``defence.dist_median`` (issue 20): a taken model's distance from the own model is clipped to
a multiple of how far the robot's own training moved its model (median of its last rounds), on
the merge and on the adopted head model. Each test has its control: the bound off (or the robot
not yet trained) takes the model as it came."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from gossip_learning.protocol import RobotAgent
from gossip_learning.protocol.bounds import MOVES, Bounds
from gossip_learning.protocol.ports import Learning
from gossip_learning.schedule import PhaseKind
from gossip_learning.training import LocalTrainer
from gossip_learning.wire import Kind, Layer
from test_redteam import HEAD, N, _member, _model_msg, _run

# own model: all ones (norm sqrt(N)); a model of all 1.5 lies 0.5 own norms away
FAR = 1.5


def _trained(a: RobotAgent, move: float = 0.1, k: float = 2.0) -> None:
    """Robot ``a`` with the bound at ``k`` whose training moved its model ``move`` own norms:
    the radius is ``k · move`` own norms (0.2 by default: a model of all 1.2)."""
    a.bounds.dist_median = k
    a.bounds.trained(move)


@pytest.mark.parametrize(("k", "expected"), [(2.0, 1.2), (0.0, FAR)])
def test_a_far_merged_model_is_pulled_to_a_multiple_of_the_training_move(
    k: float, expected: float
) -> None:
    """Broadcast merge of a model 0.5 norms away: with the bound at 2 x a 0.1 training move it is
    pulled to 0.2 norms (all 1.2) before the equal-weight average; off, merged as it came."""
    a, sched = _member(mode="broadcast")
    _trained(a, k=k)
    phase = next(p for p in sched if p.kind == PhaseKind.SEND and p.layer == Layer.INTRA)
    a.run_phase(phase, phase.slot + 1)
    a.handle(_model_msg(Kind.MODEL, 2, phase.slot, Layer.INTRA,
                        model=np.full(N, FAR, np.float32)))  # fmt: skip
    a.run_phase(next(p for p in sched if p.slot == phase.slot + 1), -1)
    assert not a.inbox.rejected
    assert np.allclose(a.params, (1.0 + expected) / 2, atol=1e-5)
    assert a.bounds.clipped == (1 if k else 0)


@pytest.mark.parametrize("handoff", ["adopt", "merge"])
@pytest.mark.parametrize(("k", "expected"), [(2.0, 1.2), (0.0, FAR)])
def test_the_head_model_is_pulled_too_on_both_handoffs(
    k: float, expected: float, handoff: str
) -> None:
    """The head's model, 0.5 norms away: adopted (``adopt``) or merged (``merge``: the head's
    10 samples against the own 10) after the pull to 0.2 norms; off, as it came."""
    a, sched = _member(handoff=handoff)
    _trained(a, k=k)
    step = _run(a, sched, PhaseKind.HEAD_SEND)
    a.handle(_model_msg(Kind.MODEL, HEAD, step, Layer.HEAD, model=np.full(N, FAR, np.float32)))
    _run(a, sched, PhaseKind.HEAD_FINISH)
    assert not a.inbox.rejected
    want = expected if handoff == "adopt" else (1.0 + expected) / 2
    assert np.allclose(a.params, want, atol=1e-5)


def test_before_any_training_and_inside_the_radius_the_model_is_taken_as_it_came() -> None:
    """No training move yet: no radius, the same array comes back. Inside the radius too; just
    outside it, a pulled copy exactly on the sphere, the sender's array untouched."""
    b = Bounds()
    b.dist_median = 2.0
    own = np.ones(N, np.float32)
    far = np.full(N, FAR, np.float32)
    assert b.clip(far, own) is far
    b.trained(None)  # no training job: nothing recorded
    b.trained(float("nan"))
    assert b.clip(far, own) is far
    b.trained(0.26)  # radius 0.52 norms: the far model is inside
    assert b.clip(far, own) is far and b.clipped == 0
    b.trained(0.2)
    b.trained(0.2)  # median 0.2: radius 0.4 norms
    pulled = b.clip(far, own)
    assert pulled is not far and np.allclose(far, FAR)
    assert pulled.dtype == np.float32 and np.allclose(pulled, 1.4, atol=1e-6)
    assert b.clipped == 1


def test_the_radius_is_the_median_of_the_last_moves() -> None:
    """One huge training move among small ones does not widen the radius (a median), and only the
    last ``MOVES`` rounds count."""
    b = Bounds()
    b.dist_median = 1.0
    own = np.ones(N, np.float32)
    far = np.full(N, 3.0, np.float32)  # 2 norms away
    for move in (5.0, 0.1, 0.1):
        b.trained(move)
    assert np.allclose(b.clip(far, own), 1.1, atol=1e-6)
    for _ in range(MOVES):
        b.trained(0.3)
    assert np.allclose(b.clip(far, own), 1.3, atol=1e-6)


class _Step:
    """An engine whose training adds 3 to weight 0 (a move of 3 / ‖result‖)."""

    def train(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, seed: int
    ) -> tuple[np.ndarray, float]:
        out = params.copy()
        out[0] += 3.0
        return out, 0.5


def test_learning_reports_how_far_training_moved_the_model() -> None:
    """What the agent feeds to the bound: the distance training moved the model, in norms of the
    result ([1, 0, 0, 0] -> [4, 0, 0, 0]: 3 / 4); None with no job."""
    lock = threading.RLock()
    model = np.array([1.0, 0.0, 0.0, 0.0], np.float32)
    learning = Learning(LocalTrainer(_Step(), np.zeros((1, 1)), np.zeros(1), 0, 0))
    assert learning.settle(model, lock) is None
    learning.start(model, 1)
    assert learning.settle(model, lock) == pytest.approx(0.75)
    assert model[0] == 4.0


def test_the_bounds_at_their_edges() -> None:
    """Exactly on each bound is inside it: a norm of exactly 3 own norms, a sample count exactly
    at the cap (not counted as capped), a model at distance 0 from an own model of norm 0 (no
    0/0). An own model of norm 0 refuses nothing by norm_ratio. A message the bounds leave alone
    comes back as it is; a clipped one keeps its declared count, even 1."""
    b = Bounds()
    own = np.ones(4, np.float32)  # norm 2
    assert b.refuse(np.full(4, 3.0, np.float32), own) is None  # norm 6 = 3 x 2; 4 away <= 6
    assert b.refuse(np.full(4, 3.1, np.float32), own) == "norm_ratio"
    assert b.refuse(own, np.zeros(4, np.float32)) is None  # dist = norm: inside dist_ratio
    b.set_declared(10, [10])  # cap 40
    assert b.weight(40) == 40.0 and b.capped == 0
    b.dist_median = 2.0
    b.trained(0.1)
    zeros = np.zeros(4, np.float32)
    assert b.clip(zeros, zeros) is zeros and b.clipped == 0
    msg = _model_msg(Kind.MODEL, 2, 0, Layer.INTRA, samples=40, model=np.full(N, 1.1, np.float32))
    assert b.admit(msg, np.ones(N, np.float32)) is msg
    far = _model_msg(Kind.MODEL, 2, 0, Layer.INTRA, samples=1, model=np.full(N, FAR, np.float32))
    pulled = b.admit(far, np.ones(N, np.float32))
    assert not isinstance(pulled, str) and pulled.samples == 1 and b.clipped == 1


def test_the_distance_of_models_near_the_float32_limit_raises_no_overflow() -> None:
    """Finite float32 weights near 3e38 overflow a norm: the distance is inf, silently, whatever
    the caller's numpy error setting."""
    from gossip_learning.protocol.bounds import gap

    big = np.full(4, 3e38, np.float32)
    with np.errstate(over="raise", invalid="raise"):
        dist, norm, _ = gap(big, np.ones(4, np.float32))
    assert norm == np.inf and not dist < np.inf
