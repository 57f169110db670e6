"""Preprocessing: RGB uint8 → (N, 3, 176, 176), bilinear, [0, 1], mean = std = 0.5."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from gossip_learning.vision.preprocess import preprocess, preprocess_params  # noqa: E402


def test_shape_dtype_layout() -> None:
    x = preprocess(np.zeros((2, 32, 32, 3), dtype=np.uint8))
    assert x.shape == (2, 3, 176, 176) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert preprocess(np.zeros((1, 32, 32, 3), np.uint8), channels_last=False).is_contiguous()


@pytest.mark.parametrize(("level", "expected"), [(0, -1.0), (255, 1.0), (51, 51 / 127.5 - 1)])
def test_constant_images_map_to_normalised_levels(level: int, expected: float) -> None:
    x = preprocess(np.full((1, 32, 32, 3), level, dtype=np.uint8))
    assert torch.allclose(x, torch.full_like(x, expected), atol=1e-6)


def test_channels_stay_in_rgb_order() -> None:
    img = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    img[..., 0] = 255  # pure red
    x = preprocess(img)
    assert torch.allclose(x[0, 0], torch.ones(176, 176))
    assert torch.allclose(x[0, 1:], -torch.ones(2, 176, 176))


def test_matches_pil_bilinear_within_one_level() -> None:
    imgs = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    ours = preprocess(imgs).permute(0, 2, 3, 1).numpy()
    pil = np.stack(
        [np.asarray(Image.fromarray(a).resize((176, 176), Image.BILINEAR)) for a in imgs]
    )
    ref = pil.astype(np.float32) / 255.0
    ref = (ref - 0.5) / 0.5
    assert np.abs(ours - ref).max() <= 1.0 / 127.5 + 1e-5


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((1, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((32, 32, 3), dtype=np.uint8))


def test_params_describe_the_pipeline() -> None:
    p = preprocess_params()
    assert p["resolution"] == 176 and p["mean"] == [0.5] * 3 and p["std"] == [0.5] * 3
