"""Alembic's environment for the catalog; see __init__.py. Run through `alembic_config`, never an alembic.ini."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from callrec.storage.catalog import make_engine
from callrec.storage.migrations import include_object, lock_database
from callrec.storage.rows import Base

config = context.config


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them: future revisions should use op.batch_alter_table.
        render_as_batch=True,
        include_object=include_object(connection.dialect.name, Base.metadata),
        # True of SQLite too, in the transaction `lock_database` begins: one revision failing undoes the whole run.
        transactional_ddl=True,
    )
    # Inside the caller's transaction (lock_database), this opens none and commits nothing.
    with context.begin_transaction():
        context.run_migrations()


async def run_on_url(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            await lock_database(connection)
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("callrec's migrations run on a connection or a sqlalchemy.url: see alembic_config")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(run_on_url(url))


main()
