"""Secrets that `callrec dev` generates once and keeps in its data directory (0600 files in a 0700 directory).

Production gets its secrets from the environment; only the embedded mode makes its own, so that a
restart keeps the tokens and recorder signatures it issued valid.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def private_dir(path: Path) -> Path:
    """`path`, created if missing, readable by its owner only (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def kept_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """The secret kept in `data_dir/name` (`nbytes` random bytes, hex), generated on first use.

    The file appears whole and at mode 0600 (written under a temporary name, then linked into place), so
    processes starting at once agree on one secret and nobody else can read it, not even for a moment.
    An existing file is re-restricted to 0600.
    """
    path = private_dir(data_dir) / name
    if not path.exists():
        staged = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(nbytes) + "\n")
            with contextlib.suppress(FileExistsError):  # another process was first: its secret wins
                os.link(staged, path)
        finally:
            staged.unlink()
    path.chmod(0o600)
    return path.read_text().strip()
