"""Local state is readable by the service's user only: files 0600, directories 0700, whatever the umask.

Everything is created through the real code (the store the settings make, the catalog, `callrec migrate`) under
the usual umask 022, which would otherwise leave it world-readable, and then stat'ed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog, create_schema, migrate
from callrec.storage.stores import make_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, api_key="k" * 32, recording_secret="s")


async def test_local_objects_are_0600_in_0700_directories(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"  # does not exist yet: the store creates it
    store = await make_store(settings(data_dir))
    await store.put_stream("staging/room-a/rec-1.mp4", chunks(b"a" * 1000, b"b" * 10))
    await store.move("staging/room-a/rec-1.mp4", "recordings/room-a/2025/rec-1.mp4")
    await store.put_stream("top.bin", chunks(b"x"))

    objects = data_dir / "objects"
    assert mode(data_dir) == 0o700 and mode(objects) == 0o700
    files, dirs = [], []
    for root, dirnames, filenames in os.walk(objects):
        dirs += [Path(root, name) for name in dirnames]
        files += [Path(root, name) for name in filenames]
    assert sorted(p.relative_to(objects).as_posix() for p in files) == ["recordings/room-a/2025/rec-1.mp4", "top.bin"]
    assert {p.relative_to(objects).as_posix(): mode(p) for p in files} == dict.fromkeys(
        ["recordings/room-a/2025/rec-1.mp4", "top.bin"], 0o600
    )
    assert dirs and all(mode(p) == 0o700 for p in dirs), {str(p): oct(mode(p)) for p in dirs}


async def test_an_existing_objects_directory_is_restricted(tmp_path: Path) -> None:
    objects = tmp_path / "objects"
    objects.mkdir(mode=0o755)
    await make_store(settings(tmp_path))
    assert mode(objects) == 0o700


async def test_the_sqlite_catalog_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "catalog.db"
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await create_schema(catalog.engine)
        async with catalog.engine.connect() as conn:  # an open connection keeps -wal and -shm in place
            await conn.exec_driver_sql("SELECT 1")
            created = sorted(p.name for p in path.parent.iterdir())
            assert created == ["catalog.db", "catalog.db-shm", "catalog.db-wal"]
            assert {name: mode(path.parent / name) for name in created} == dict.fromkeys(created, 0o600)
    finally:
        await catalog.close()
    assert mode(path.parent) == 0o700


async def test_migrate_makes_a_private_data_dir_and_catalog(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    (data_dir / "catalog.db").touch(mode=0o644)  # left by an older version: restricted too
    await migrate(settings(data_dir))
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "catalog.db") == 0o600
