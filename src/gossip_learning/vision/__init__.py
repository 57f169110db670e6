"""Frozen MCUNet-in3 features of CIFAR-10 (the paper's learning setup), computed once and cached.

Importing this package registers the dataset ``cifar10-mcunet`` (loader
:func:`load_cifar10_mcunet`) with :mod:`gossip_learning.datasets`.
"""

from __future__ import annotations

from ..datasets import register_dataset
from .backbone import Backbone, build_backbone, load_backbone, resolve_model_files
from .cifar import CLASS_NAMES, CifarArrays, CifarSource, open_cifar10, read_cifar10
from .features import DATASET_NAME, extract_features, extract_features_main, load_cifar10_mcunet
from .preprocess import preprocess

register_dataset(DATASET_NAME, load_cifar10_mcunet)

__all__ = [
    "CLASS_NAMES",
    "DATASET_NAME",
    "Backbone",
    "CifarArrays",
    "CifarSource",
    "build_backbone",
    "extract_features",
    "extract_features_main",
    "load_backbone",
    "load_cifar10_mcunet",
    "open_cifar10",
    "preprocess",
    "read_cifar10",
    "resolve_model_files",
]
