"""Throughput of MCUNet-in3 feature extraction (preprocess to 176 px + backbone) on this CPU.

    python benchmarks/feature_extraction.py [--threads 2] [--batch-sizes 8 16 32 64 128]
    python benchmarks/feature_extraction.py --full   # then extract all of CIFAR-10 into the cache

Prints images/s for each batch size, with and without ``channels_last``. Uses the real weights when
they can be found (model dir / env / cache / shared), random weights otherwise (same speed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from gossip_learning.errors import DataError
from gossip_learning.vision.backbone import Backbone, build_backbone, load_backbone
from gossip_learning.vision.features import extract_features_main
from gossip_learning.vision.preprocess import preprocess


def _backbone(model_dir: str | None, channels_last: bool) -> tuple[Backbone, str]:
    try:
        return load_backbone(model_dir, channels_last=channels_last, download=False), "pretrained"
    except DataError:
        return build_backbone(channels_last=channels_last), "random weights"


def bench(net: Backbone, batch_size: int, images: int, repeats: int) -> float:
    """Median images/s of preprocess + forward over ``repeats`` passes of ``images`` images."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    rates = []
    with torch.inference_mode():
        net.module(preprocess(data[:batch_size], channels_last=net.channels_last))  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            for start in range(0, images, batch_size):
                x = preprocess(data[start : start + batch_size], channels_last=net.channels_last)
                net.module(x)
            rates.append(images / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--images", type=int, default=512, help="images per timed pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir")
    parser.add_argument("--full", action="store_true", help="then extract all CIFAR-10 features")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, 176 px, median of {args.repeats}")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for channels_last in (True, False):
        net, kind = _backbone(args.model_dir, channels_last)
        for bs in args.batch_sizes:
            rate = bench(net, bs, args.images, args.repeats)
            print(f"channels_last={channels_last!s:5} batch={bs:4d}: {rate:7.1f} images/s ({kind})")
    print(
        "load average after: {:.2f} {:.2f} {:.2f} (other processes slow this down)".format(
            *os.getloadavg()
        )
    )
    if args.full:
        extract_features_main(["--threads", str(args.threads)])


if __name__ == "__main__":
    main()
