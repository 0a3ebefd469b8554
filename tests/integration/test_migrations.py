"""The catalog's Alembic migrations build exactly what the models define, on SQLite and PostgreSQL.

Two checks, because Alembic's own comparison has blind spots here: `compare_metadata` against the models (columns,
types, nullability, keys, plain indexes), then the database's own record of every table, column, constraint and index
(expressions, collations and the partial unique index's WHERE included) against a database that `create_all` built
from the same models. `compare_metadata` cannot check the expression indexes: SQLite cannot reflect them,
PostgreSQL's reflection drops their COLLATE "C", and it ignores `Index.ddl_if`.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from callrec.storage import migrations
from callrec.storage.catalog import Catalog, create_schema, make_engine
from callrec.storage.rows import Base, RoomRow

MODEL_TABLES = {
    "rooms",
    "calls",
    "recordings",
    "notifications",
    "chat_messages",
    "nonces",
    "recorders",
    "recorder_slots",
    "room_members",
    "consents",
}
KEYSET_INDEXES = {
    "sqlite": {
        "ix_recordings_by_start_date",
        "ix_recordings_by_duration",
        "ix_recordings_by_size",
        "ix_recordings_by_room_name",
    },
    "postgresql": {
        "ix_recordings_by_start_date_pg",
        "ix_recordings_by_duration_pg",
        "ix_recordings_by_size_pg",
        "ix_recordings_by_room_name_pg",
    },
}
HEAD = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()


def model_differences(conn: Connection) -> list[Any]:
    """What autogenerate would change to make the database match the models.

    Through env.py's filter: indexes of the other dialect and expression indexes left out (`structure` checks them).
    """
    include = migrations.include_object(conn.dialect.name, Base.metadata)
    context = MigrationContext.configure(conn, opts={"include_object": include, "compare_type": True})
    with warnings.catch_warnings():  # both about the indexes that `structure` compares instead
        warnings.filterwarnings("ignore", message="Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", message="autogenerate skipping metadata-specified expression-based index")
        return list(compare_metadata(context, Base.metadata))


async def structure(conn: AsyncConnection, schema: str = "public") -> dict[str, Any]:
    """Every table, column, constraint and index, as the database itself describes them (alembic_version aside).

    `schema` is PostgreSQL's; SQLite keeps the CREATE statements themselves.
    """
    if conn.dialect.name == "sqlite":
        rows = await conn.execute(
            text("SELECT type || ' ' || name, sql FROM sqlite_master WHERE tbl_name <> 'alembic_version'")
        )
        # A table that a migration rebuilt (batch "recreate") is named in quotes: the same table.
        return {key: re.sub(r'^CREATE TABLE "(\w+)"', r"CREATE TABLE \1", sql or "") for key, sql in rows.all()}
    query = f"""
        SELECT 'index ' || indexname, indexdef FROM pg_indexes
         WHERE schemaname = '{schema}' AND tablename <> 'alembic_version'
        UNION ALL
        SELECT 'column ' || table_name || '.' || column_name,
               concat_ws(' ', ordinal_position, data_type, character_maximum_length, is_nullable, column_default)
          FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name <> 'alembic_version'
        UNION ALL
        SELECT 'constraint ' || rel.relname || '.' || con.conname, pg_get_constraintdef(con.oid)
          FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid
          JOIN pg_namespace ns ON ns.oid = rel.relnamespace
         WHERE ns.nspname = '{schema}' AND rel.relname <> 'alembic_version'
        UNION ALL
        SELECT 'sequence ' || sequencename, data_type::text FROM pg_sequences WHERE schemaname = '{schema}'
    """
    rows = await conn.execute(text(query))
    return {str(key): str(value).replace(f"{schema}.", "") for key, value in rows}


async def create_all_structure(catalog_url: str, tmp_path: Path) -> dict[str, Any]:
    """The structure of what `Base.metadata.create_all` builds (what create_schema did before migrations)."""
    if catalog_url.startswith("sqlite"):
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            async with engine.connect() as conn:
                return await structure(conn)
        finally:
            await engine.dispose()
    engine = make_engine(catalog_url)  # PostgreSQL: a schema of its own in the same database
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA reference"))
            await conn.run_sync(
                lambda sync: Base.metadata.create_all(sync.execution_options(schema_translate_map={None: "reference"}))
            )
        async with engine.connect() as conn:
            found = await structure(conn, "reference")
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA reference CASCADE"))
        return found
    finally:
        await engine.dispose()


async def revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(migrations.current_revision)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))


async def test_upgrade_builds_what_the_models_define(catalog_url: str, tmp_path: Path) -> None:
    engine = make_engine(catalog_url)
    try:
        await create_schema(engine)
        assert HEAD is not None and await revision(engine) == HEAD
        async with engine.connect() as conn:
            dialect = conn.dialect.name
            assert await conn.run_sync(model_differences) == []
            built = await structure(conn)
    finally:
        await engine.dispose()

    assert built == await create_all_structure(catalog_url, tmp_path)
    # The per-dialect keyset indexes, spelled out: create_all honours ddl_if, so the comparison alone would not say.
    index_names = {key.split(" ", 1)[1] for key in built if key.startswith("index ")}
    other = "postgresql" if dialect == "sqlite" else "sqlite"
    assert KEYSET_INDEXES[dialect] <= index_names
    assert not KEYSET_INDEXES[other] & index_names
    partial = built["index uq_recordings_room_in_progress"]
    assert "UNIQUE" in partial and "WHERE" in partial and "'starting'" in partial


async def test_upgrade_twice_is_a_no_op(catalog_url: str) -> None:
    catalog = Catalog.from_url(catalog_url)
    try:
        await create_schema(catalog.engine)
        await catalog.add_room(RoomRow(room_id="r1", room_name="Room", config={}, creation_date=1))
        async with catalog.engine.connect() as conn:
            before = await structure(conn)
        await create_schema(catalog.engine)
        async with catalog.engine.connect() as conn:
            assert await structure(conn) == before
        assert await revision(catalog.engine) == HEAD
        assert await catalog.get_room("r1") is not None
    finally:
        await catalog.close()


async def test_a_second_upgrade_waits_for_the_first_then_finds_the_schema_current(catalog_url: str) -> None:
    """What keeps two processes apart: the database lock that an upgrade holds until it commits."""
    first, second = make_engine(catalog_url), make_engine(catalog_url)
    try:
        async with first.connect() as conn:
            await migrations.lock_database(conn)
            await conn.run_sync(migrations.upgrade, "head")
            waiting = asyncio.create_task(create_schema(second))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await conn.commit()
        await asyncio.wait_for(waiting, 10)
        assert await revision(second) == HEAD
    finally:
        await first.dispose()
        await second.dispose()


async def test_upgrades_in_one_process_take_turns(tmp_path: Path) -> None:
    """Alembic's `context` and `op` are process-wide: concurrent upgrades of different databases must not mix."""
    engines = [make_engine(f"sqlite+aiosqlite:///{tmp_path / f'catalog{n}.db'}") for n in range(3)]
    try:
        await asyncio.gather(*(create_schema(engine) for engine in engines))
        assert [await revision(engine) for engine in engines] == [HEAD] * 3
    finally:
        for engine in engines:
            await engine.dispose()


async def test_downgrade_to_base_removes_every_table(catalog_url: str) -> None:
    engine = make_engine(catalog_url)
    try:
        await create_schema(engine)
        assert await table_names(engine) == MODEL_TABLES | {"alembic_version"}
        async with engine.connect() as conn:
            built = await structure(conn)

        await migrations.downgrade_engine(engine, "base")
        assert await table_names(engine) == {"alembic_version"}  # Alembic keeps its table, empty
        assert await revision(engine) is None
        async with engine.connect() as conn:
            assert await structure(conn) == {}  # no table, column, index, constraint or sequence left

        await create_schema(engine)  # and back up, to the same schema
        async with engine.connect() as conn:
            assert await structure(conn) == built
    finally:
        await engine.dispose()
