"""Preprocessing as MCUNet-in3 was trained: RGB, bilinear to 176 px, [0, 1], (x - 0.5) / 0.5."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .backbone import RESOLUTION

PREPROCESS_VERSION = 1
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def preprocess_params(resolution: int = RESOLUTION) -> dict[str, Any]:
    """Everything that changes the preprocessed pixels; part of every feature cache key."""
    return {
        "version": PREPROCESS_VERSION,
        "resolution": resolution,
        "interpolation": "bilinear",
        "align_corners": False,
        "antialias": True,
        "round_to_uint8": True,
        "mean": list(MEAN),
        "std": list(STD),
    }


def preprocess(
    images: np.ndarray | torch.Tensor,
    resolution: int = RESOLUTION,
    channels_last: bool = True,
) -> torch.Tensor:
    """Map uint8 RGB images (N, H, W, 3) to the backbone's input (N, 3, res, res) float32.

    Resizing is bilinear with half-pixel centres (``align_corners=False``) and antialiasing, then
    rounded to integer levels, so the result equals PIL's ``resize(BILINEAR)`` followed by
    ``ToTensor`` and ``Normalize(0.5, 0.5)`` (the torchvision pipeline the weights were trained
    with) up to one grey level. Antialiasing only matters when shrinking larger images.
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (resolution, resolution):
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True
        )
        x = x.round_().clamp_(0.0, 255.0)
    # (x / 255 - 0.5) / 0.5 == x / 127.5 - 1 (mean = std = 0.5 in every channel).
    x = x.mul_(1.0 / 127.5).sub_(1.0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)
