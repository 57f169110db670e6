"""How much class signal the frozen MCUNet-in3 features of CIFAR-10 carry: two fixed probes.

    python benchmarks/feature_probe.py --json docs/results/feature_probe.json
    python benchmarks/feature_probe.py --features feats.npz   # X_train, y_train, X_test, y_test

On the full cached features (50,000 train / 10,000 test, 160-d; the cache is filled by
``gossip-learning features`` or any CIFAR-10 run, ``--allow-extract`` fills it here, ~10 min on
2 cores), standardised with the training mean and std (``datasets.fit_standardizer``):

* multinomial logistic regression, scikit-learn ``LogisticRegression(solver="lbfgs", C=1.0,
  max_iter=1000)`` (lbfgs converges in well under 1,000 iterations here, in seconds);
* nearest class centroid (Euclidean, ``sklearn.neighbors.NearestCentroid``).

Prints and records test (and train) accuracy, sample counts, iterations and fit/predict seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _report import Report, allow_dirty_flag, format_load, load_avg

from gossip_learning.datasets import Dataset, fit_standardizer, load_npz, standardize_with
from gossip_learning.errors import DataError


def cached_features(args: argparse.Namespace) -> tuple[Dataset, str]:
    """The full CIFAR-10 MCUNet-in3 features from the package's cache (or ``--features``)."""
    if args.features:
        return load_npz(args.features), Path(args.features).name
    from gossip_learning.vision import _paths, features
    from gossip_learning.vision.backbone import resolve_model_files
    from gossip_learning.vision.cifar import open_cifar10

    root = _paths.cache_root()
    src = (
        open_cifar10(args.source)
        if args.source
        else features.default_source(root / "datasets" / "cifar10")
    )
    weights = resolve_model_files(args.model_dir, download=args.allow_extract).weights_sha256
    key = features.cache_key(weights, src.fingerprint(), None)
    path = features.cache_file(root / "features", key)
    if not path.is_file() and not args.allow_extract:
        raise DataError(
            f"no cached features at {path}: run 'gossip-learning features' first, or pass "
            "--allow-extract (about 10 minutes on 2 cores)"
        )
    data, _ = features.load_or_extract(src, args.model_dir, progress=False)
    return data, path.name


def probe(name: str, model: Any, data: Dataset, **settings: Any) -> dict[str, Any]:
    """Fit ``model`` on the standardised train split; accuracies and seconds."""
    mean, std = fit_standardizer(data.X_train)
    x_train = standardize_with(data.X_train, mean, std)
    x_test = standardize_with(data.X_test, mean, std)
    t0 = time.perf_counter()
    model.fit(x_train, data.y_train)
    t1 = time.perf_counter()
    test_acc = float(np.mean(model.predict(x_test) == data.y_test))
    t2 = time.perf_counter()
    train_acc = float(np.mean(model.predict(x_train) == data.y_train))
    return {
        "classifier": name,
        **settings,
        "standardize": "train mean/std",
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
        "dim": data.dim,
        "classes": data.num_classes,
        "test_accuracy": round(test_acc, 4),
        "train_accuracy": round(train_acc, 4),
        "fit_s": round(t1 - t0, 6),
        "predict_s": round(t2 - t1, 6),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", help="an .npz with X_train, y_train, X_test, y_test")
    parser.add_argument("--source", help="CIFAR-10 source of the cached features")
    parser.add_argument("--model-dir", help="folder with the MCUNet-in3 .json and .pth")
    parser.add_argument("--allow-extract", action="store_true", help="extract if not cached")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--C", type=float, default=1.0, help="inverse L2 strength")
    parser.add_argument("--json", help="write the report here")
    allow_dirty_flag(parser)
    args = parser.parse_args(argv)

    from sklearn import __version__ as sklearn_version
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid

    report = Report(
        "feature_probe",
        [__file__, *(sys.argv[1:] if argv is None else argv)],
        out=args.json,
        allow_dirty=args.allow_dirty,
    )
    try:
        data, features_name = cached_features(args)
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    print(
        f"{features_name}: {len(data.y_train)} train / {len(data.y_test)} test, {data.dim}-d, "
        f"{data.num_classes} classes; scikit-learn {sklearn_version}; "
        f"{format_load(report.load_before)} before"
    )
    logreg = LogisticRegression(solver="lbfgs", C=args.C, max_iter=args.max_iter)
    rec = probe(
        "logistic_regression",
        logreg,
        data,
        solver="lbfgs",
        C=args.C,
        max_iter=args.max_iter,
    )
    rec["iterations"] = int(np.max(logreg.n_iter_))
    rec["converged"] = rec["iterations"] < args.max_iter
    rows = [rec, probe("nearest_centroid", NearestCentroid(), data, metric="euclidean")]
    print(f"{'classifier':>20} {'test acc':>8} {'train acc':>9} {'fit s':>7}  load average")
    for row in rows:
        row.update(features=features_name, sklearn=sklearn_version)
        report.add(**row)
        print(
            f"{row['classifier']:>20} {row['test_accuracy']:>8.4f} {row['train_accuracy']:>9.4f} "
            f"{row['fit_s']:>7.2f}  {format_load(load_avg())}"
        )
    out = report.write(args.json)
    print(f"{format_load(out['machine']['load_avg_after'])} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
