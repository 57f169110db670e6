"""Feature extraction end to end on real CIFAR-10 JPEGs: decode, preprocess to 176 px, MCUNet-in3.

    python benchmarks/feature_extraction.py                          # 2,000 test images, 2 threads
    python benchmarks/feature_extraction.py --json docs/results/feature_extraction.json
    python benchmarks/feature_extraction.py --images 500 --batch-sizes 16 32 64 --layouts both

Reads the first N images of a split (N/10 per class, by file name) from the CIFAR-10 image folder
or tarball (default: ``$GOSSIP_LEARNING_CIFAR``, else ``<shared>/datasets/cifar10-jpeg.tar.gz``)
with the package's own reader (``vision.cifar.image_bytes``), then for each batch times the JPEG
decoding (``vision.cifar.decode_image``), the preprocessing (``vision.preprocess.preprocess``) and
the backbone forward pass separately. ``images_per_s`` is N over decode + preprocess + backbone
(encoded bytes in memory to features); reading the archive (gunzip of the whole tarball) is
reported on its own. Uses the pretrained weights (``--model-dir``, env, cache or shared folder)
unless ``--random-weights``; the forward pass costs the same with either.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
from _report import Report, allow_dirty_flag, format_load, load_avg

from gossip_learning.errors import DataError
from gossip_learning.vision._paths import cache_root
from gossip_learning.vision.backbone import Backbone, build_backbone, load_backbone
from gossip_learning.vision.cifar import decode_image, image_bytes, open_cifar10
from gossip_learning.vision.features import default_source
from gossip_learning.vision.preprocess import preprocess

LAYOUTS = {"channels_last": [True], "contiguous": [False], "both": [True, False]}


def backbone(model_dir: str | None, random_weights: bool, channels_last: bool) -> Backbone:
    if random_weights:
        return build_backbone(channels_last=channels_last)
    return load_backbone(model_dir, channels_last=channels_last, download=False)


def run_once(net: Backbone, encoded: list[bytes], batch_size: int) -> dict[str, float]:
    """Seconds spent decoding, preprocessing and in the backbone for all of ``encoded``."""
    decode_s = preprocess_s = backbone_s = 0.0
    features = 0
    with torch.inference_mode():
        warm = np.stack([decode_image(raw) for raw in encoded[:batch_size]])
        net.module(preprocess(warm, net.resolution, channels_last=net.channels_last))
        for start in range(0, len(encoded), batch_size):
            t0 = time.perf_counter()
            images = np.stack([decode_image(raw) for raw in encoded[start : start + batch_size]])
            t1 = time.perf_counter()
            x = preprocess(images, net.resolution, channels_last=net.channels_last)
            t2 = time.perf_counter()
            out = net.module(x)
            t3 = time.perf_counter()
            decode_s += t1 - t0
            preprocess_s += t2 - t1
            backbone_s += t3 - t2
            features += int(out.shape[0])
    if features != len(encoded) or out.shape[1] != net.feature_dim:
        raise RuntimeError(f"expected {len(encoded)} x {net.feature_dim} features, got {features}")
    return {"decode_s": decode_s, "preprocess_s": preprocess_s, "backbone_s": backbone_s}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", help="CIFAR-10 image folder or tar (default: $GOSSIP_LEARNING_CIFAR, shared)"
    )
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--images", type=int, default=2000, help="images to push through")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    parser.add_argument("--layouts", default="channels_last", choices=sorted(LAYOUTS))
    parser.add_argument("--model-dir", help="folder with the MCUNet-in3 .json and .pth")
    parser.add_argument("--random-weights", action="store_true", help="skip the pretrained ones")
    parser.add_argument("--json", help="write the report here")
    allow_dirty_flag(parser)
    args = parser.parse_args(argv)
    if args.images < 1 or args.threads < 1 or min(args.batch_sizes) < 1:
        print("error: --images, --threads and --batch-sizes must be >= 1")
        return 2

    report = Report(
        "feature_extraction",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    torch.set_num_threads(args.threads)
    try:
        if args.source:
            src = open_cifar10(args.source)
        else:
            src = default_source(cache_root() / "datasets" / "cifar10")
        t0 = time.perf_counter()
        items = image_bytes(src, math.ceil(args.images / 10), splits=(args.split,))[: args.images]
        read_s = time.perf_counter() - t0
        nets = {
            cl: backbone(args.model_dir, args.random_weights, cl) for cl in LAYOUTS[args.layouts]
        }
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    encoded = [raw for _, _, raw in items]
    n = len(encoded)
    weights = "random" if args.random_weights else "pretrained"
    print(
        f"{n} {args.split} images from {src.path.name} ({src.kind}), read in "
        f"{read_s:.2f} s; torch {torch.__version__}, {args.threads} threads, {weights} weights, "
        f"{format_load(report.load_before)} before"
    )
    print(
        f"{'layout':>13} {'batch':>5} {'images/s':>8} {'decode s':>8} {'prepr. s':>8} "
        f"{'backbone s':>10}  load average"
    )
    for channels_last, net in nets.items():
        for bs in args.batch_sizes:
            t = run_once(net, encoded, bs)
            total = t["decode_s"] + t["preprocess_s"] + t["backbone_s"]
            load = load_avg()
            rec = report.add(
                images=n,
                split=args.split,
                source=src.path.name,
                weights=weights,
                weights_id=net.weights_id,
                threads=args.threads,
                batch_size=bs,
                channels_last=channels_last,
                resolution=net.resolution,
                archive_read_s=round(read_s, 6),
                decode_s=round(t["decode_s"], 6),
                preprocess_s=round(t["preprocess_s"], 6),
                backbone_s=round(t["backbone_s"], 6),
                total_s=round(total, 6),
                images_per_s=round(n / total, 1),
                images_per_s_incl_archive_read=round(n / (total + read_s), 1),
                backbone_images_per_s=round(n / t["backbone_s"], 1),
                load_avg_1min_after=load[0],
            )
            layout = "channels_last" if channels_last else "contiguous"
            print(
                f"{layout:>13} {bs:>5} {rec['images_per_s']:>8.1f} {rec['decode_s']:>8.2f} "
                f"{rec['preprocess_s']:>8.2f} {rec['backbone_s']:>10.2f}  {load[0]:.2f}",
                flush=True,
            )
    out = report.write(args.json)
    print(f"{format_load(out['machine']['load_avg_after'])} after (other processes slow this)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
