"""Where the vision pipeline looks for shared files and keeps its caches."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

ENV_SHARED = "GOSSIP_LEARNING_SHARED"
ENV_MODEL_DIR = "GOSSIP_LEARNING_MODEL_DIR"
ENV_CIFAR = "GOSSIP_LEARNING_CIFAR"
ENV_CACHE = "GOSSIP_LEARNING_CACHE"


def shared_dir() -> Path | None:
    """The shared folder: ``$GOSSIP_LEARNING_SHARED`` or ``<repo>/../shared``, if it exists."""
    env = os.environ.get(ENV_SHARED)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    # In a source checkout, parents[3] of this file is the repository root.
    candidate = Path(__file__).resolve().parents[3].parent / "shared"
    return candidate if candidate.is_dir() else None


def cache_root() -> Path:
    """``$GOSSIP_LEARNING_CACHE``, else ``$XDG_CACHE_HOME/gossip_learning`` or ``~/.cache/...``."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gossip_learning"


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
