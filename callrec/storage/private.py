"""Local state is private to the service's user: files 0600, directories 0700, set when they are created.

Modes are given at creation (not left to the process umask, and not fixed afterwards with a window in
between): the local object store's objects and directories, the SQLite catalog (whose `-wal` and `-shm`
files SQLite creates with the database file's mode), the data directory, and the secrets `callrec dev` generates
(production gets its secrets from the environment; the embedded mode keeps its own, so that a restart keeps the
tokens and recorder signatures it issued valid).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dirs(path: Path) -> None:
    """`path` and its missing parents, each created 0700 (`mkdir(parents=True)` gives parents the umask's mode)."""
    missing: list[Path] = []
    while not path.is_dir() and path.parent != path:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise


def restrict_dir(path: Path) -> None:
    """`path` created if missing, and 0700 if this process owns it (a directory someone else owns keeps its mode)."""
    private_dirs(path)
    with contextlib.suppress(PermissionError):
        path.chmod(DIR_MODE)


def private_sqlite_file(url: str) -> None:
    """Creates the SQLite database file of `url` empty at 0600 (and its missing directories 0700) before SQLite
    would create it with the umask's mode; an existing file is restricted to 0600. Other URLs: nothing."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_dirs(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    with contextlib.suppress(PermissionError):
        path.chmod(FILE_MODE)


def kept_secret(data_dir: Path, name: str, nbytes: int = 32) -> str:
    """The secret kept in `data_dir/name` (`nbytes` random bytes, hex), generated on first use.

    The file appears whole and at mode 0600 (written under a temporary name, then linked into place), so
    processes starting at once agree on one secret and nobody else can read it, not even for a moment.
    An existing file is re-restricted to 0600.
    """
    private_dirs(data_dir)
    data_dir.chmod(DIR_MODE)
    path = data_dir / name
    if not path.exists():
        staged = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(nbytes) + "\n")
            with contextlib.suppress(FileExistsError):  # another process was first: its secret wins
                os.link(staged, path)
        finally:
            staged.unlink()
    path.chmod(FILE_MODE)
    return path.read_text().strip()
