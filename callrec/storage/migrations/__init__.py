"""The catalog's schema history: Alembic revisions in `versions/`, run by `env.py`.

No alembic.ini: `alembic_config` builds the Config in code, with `script_location` pointing here, so the installed
package migrates itself (`create_schema` in catalog.py, `callrec migrate`). `upgrade` and `downgrade` run on a
connection that the caller holds (and commits); `env.py` opens its own engine only when given a URL instead, e.g. to
write a new revision by hand:

    from alembic import command
    from callrec.storage.migrations import alembic_config
    command.revision(alembic_config(url="sqlite+aiosqlite:///dev.db"), "add x", autogenerate=True)

Autogenerate ignores `Index.ddl_if` and cannot compare expression indexes (SQLite cannot reflect them, PostgreSQL's
reflection drops their COLLATE): `include_object` leaves both out, so write the ops of the keyset-listing indexes by
hand.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic (imported below, when first needed) logs a line per built-in plugin at INFO when imported, since 1.17.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

SCRIPT_LOCATION = Path(__file__).resolve().parent

# Any constant: the PostgreSQL advisory lock that one upgrade at a time holds, per database.
PG_LOCK_KEY = 0x63616C6C726563  # "callrec"

# Alembic's `context` and `op` are process-wide proxies: two migrations must not interleave in one process either.
_process_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """A Config for this directory that runs on `connection` (the caller's transaction) or else on `url`."""
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates "%": a path or URL may hold one.
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade within the connection's transaction (the caller commits); a no-op when already there."""
    from alembic import command

    command.upgrade(alembic_config(connection=connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(connection=connection), revision)


def current_revision(connection: Connection) -> str | None:
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def lock_database(conn: AsyncConnection) -> None:
    """Begin the transaction holding the lock that keeps other processes' migrations out until it ends.

    SQLite: its write lock, taken up front (BEGIN IMMEDIATE waits out the engine's busy_timeout), so a second process
    reads alembic_version only once the first has committed; this explicit BEGIN also makes the DDL transactional,
    which pysqlite's implicit transactions would not. PostgreSQL: a transaction-scoped advisory lock.
    """
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        await conn.execute(text(f"SELECT pg_advisory_xact_lock({PG_LOCK_KEY})"))


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database to `revision` in one transaction, one migration at a time per process and per database."""
    await _migrate(engine, upgrade, revision)


async def downgrade_engine(engine: AsyncEngine, revision: str) -> None:
    await _migrate(engine, downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Connection, str], None], revision: str) -> None:
    loop = asyncio.get_running_loop()
    process_lock = _process_locks.setdefault(loop, asyncio.Lock())
    async with process_lock, engine.connect() as conn:
        await lock_database(conn)
        await conn.run_sync(step, revision)
        await conn.commit()


def include_object(dialect_name: str, metadata: MetaData) -> Any:
    """For autogenerate (`include_object`): what it can compare on this dialect.

    Leaves out the model indexes that `Index.ddl_if` keeps for another dialect (Alembic ignores `ddl_if`), and the
    expression indexes, found or defined, by name: SQLite cannot reflect them and PostgreSQL's reflection drops their
    COLLATE, so autogenerate would skip or re-create them each time. Write their ops by hand;
    tests/integration/test_migrations.py checks them against what `create_all` builds.
    """
    expression_indexes = {
        index.name
        for table in metadata.tables.values()
        for index in table.indexes
        if not all(isinstance(element, Column) for element in index.expressions)
    }

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ != "index":
            return True
        if name in expression_indexes:
            return False
        wanted = None if reflected else getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return wanted is None or wanted == dialect_name

    return include
