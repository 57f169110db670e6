"""A robot's fleet key from a file, never from a command line or a parameter.

``launch/robot.launch.py fleet_key_file:=/etc/gossip_learning/fleet.key`` checks the key file here
and hands the robot a copy of its config with ``defence.fleet_key: file:<the key file>``, written
to a private (0700) folder as a 0600 file: the key itself appears in no process's arguments, no
ROS parameter, no log line and no config copy; the robot reads it from the file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from gossip_learning.config import dump_config, load_config
from gossip_learning.errors import ConfigError

KEY = "fleet_key_file"


def read_key_file(path: str | os.PathLike[str]) -> str:
    """The key in ``path`` (surrounding whitespace stripped); the file must be a regular file
    that neither its group nor others may read, and the key at least 16 characters."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ConfigError(KEY, f"cannot read {str(p)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(KEY, f"{str(p)!r} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(KEY, f"{str(p)!r} is readable by others: chmod 600 it")
    key = p.read_text(encoding="utf-8").strip()
    if len(key) < 16:
        raise ConfigError(KEY, f"the key in {str(p)!r} is shorter than 16 characters")
    return key


def config_with_key(config: str, key_file: str, overrides: list[str] | None = None) -> Path:
    """``config`` (with ``overrides``) naming ``key_file`` as the fleet key's source, written to
    a new private file; returns its path. The key file is checked first."""
    read_key_file(key_file)
    cfg = load_config(
        config or None, [*(overrides or []), f"defence.fleet_key=file:{Path(key_file).resolve()}"]
    )
    folder = Path(tempfile.mkdtemp(prefix="gossip_learning_fleet_key_"))  # mode 0700
    path = folder / "config.yaml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(dump_config(cfg))
    return path
