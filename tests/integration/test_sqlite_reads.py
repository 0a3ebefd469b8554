"""A SQLite catalog reads a recording's row in the calling thread (callrec/storage/sqlite_reads.py): the row must be
the one the async engine's ORM load gives, field for field, and fall back to the engine when SQLite cannot answer."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.rows import RecordingRow


@pytest.fixture
async def sqlite_catalog(tmp_path: Path) -> AsyncIterator[Catalog]:
    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}")
    await create_schema(catalog.engine)
    yield catalog
    await catalog.close()


def stored(recording_id: str = "room--EG_read--1") -> RecordingRow:
    return RecordingRow(
        recording_id=recording_id,
        room_id="room",
        room_name="Ré union",
        status="complete",
        layout="grid",
        encoding={"video": {"width": 640, "height": 360, "codec": "H264"}},
        filename="a.mp4",
        creation_date=1_700_000_000_000,
        start_date=1_700_000_000_500,
        end_date=None,
        duration=12.5,
        object_key="recordings/room/a.mp4",
        size=123_456,
        sha256="ab" * 32,
    )


async def orm_read(catalog: Catalog, recording_id: str) -> RecordingRow | None:
    async with catalog.sessions() as session:
        return await session.get(RecordingRow, recording_id)


def fields(row: RecordingRow) -> dict[str, object]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(RecordingRow).column_attrs}


async def test_the_row_read_in_the_thread_equals_the_orms(sqlite_catalog: Catalog) -> None:
    await sqlite_catalog.add_recording(stored())
    fast = await sqlite_catalog.get_recording("room--EG_read--1")
    slow = await orm_read(sqlite_catalog, "room--EG_read--1")
    assert fast is not None and slow is not None
    assert fields(fast) == fields(slow)
    assert fast.encoding == {"video": {"width": 640, "height": 360, "codec": "H264"}}  # JSON decoded, not a string
    assert fast.end_date is None and fast.duration == 12.5
    assert inspect(fast).detached  # as a row whose session has closed: a later session updates it, never inserts it


async def test_an_unknown_id_is_none(sqlite_catalog: Catalog) -> None:
    assert await sqlite_catalog.get_recording("room--EG_none--1") is None


async def test_a_write_is_seen_by_the_next_read(sqlite_catalog: Catalog) -> None:
    await sqlite_catalog.add_recording(stored())
    assert (await sqlite_catalog.get_recording("room--EG_read--1")) is not None
    async with sqlite_catalog.writing() as session:
        await session.execute(text("UPDATE recordings SET status = 'failed' WHERE recording_id = 'room--EG_read--1'"))
    again = await sqlite_catalog.get_recording("room--EG_read--1")
    assert again is not None and again.status == "failed"


async def test_a_detached_row_from_it_can_be_changed_through_a_session(sqlite_catalog: Catalog) -> None:
    await sqlite_catalog.add_recording(stored())
    row = await sqlite_catalog.get_recording("room--EG_read--1")
    assert row is not None
    async with sqlite_catalog.writing() as session:
        session.add(row)  # a transient row would be INSERTed here (and collide); a detached one is UPDATEd
        row.size = 7
    after = await orm_read(sqlite_catalog, "room--EG_read--1")
    assert after is not None and after.size == 7


async def test_when_sqlite_cannot_answer_the_engine_does(sqlite_catalog: Catalog) -> None:
    await sqlite_catalog.add_recording(stored())
    reader = sqlite_catalog._recording_reader
    assert reader is not None
    reader.sql = reader.sql.replace("FROM recordings", "FROM no_such_table")  # as a schema it does not know
    row = await sqlite_catalog.get_recording("room--EG_read--1")
    assert row is not None and row.size == 123_456


async def test_a_new_process_whose_first_use_of_the_catalog_is_this_read_gets_the_row(
    sqlite_catalog: Catalog, tmp_path: Path
) -> None:
    await sqlite_catalog.add_recording(stored())
    first_read = (
        "import asyncio\n"
        "from callrec.storage.catalog import Catalog\n"
        "async def main():\n"
        f"    catalog = Catalog.from_url('sqlite+aiosqlite:///{tmp_path / 'catalog.db'}')\n"
        "    row = await catalog.get_recording('room--EG_read--1')\n"
        "    print(row.status, row.size)\n"
        "    await catalog.close()\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, "-c", first_read], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "complete 123456\n"), done.stderr  # as an API just started
