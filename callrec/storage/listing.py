"""Keyset-paged listing of recordings: filters, four sort fields, both orders, on SQLite and PostgreSQL.

Rows are ordered by (sort key, recording_id), both in the same direction, and a page continues strictly
after the last row (value, id) of the previous one: `key > value OR (key = value AND id > id)` (ascending).
No OFFSET: page N costs what page 1 costs. The two branches of that OR are run as two queries (the rows
tied with `value` after `id`, then, if the page is not full yet, the rows beyond `value`), because each
branch is an index seek on (key, recording_id) on both databases, while the OR as one statement makes
both of them scan every row tied with `value` (on SQLite also for a row-value `(key, id) > (?, ?)`
over an expression index). Ties are common: all NULLs share one key, all recordings of a room one name.

The sort keys are defined the same way on both databases:

* `start_date`, `duration` and `size` are NULL for recordings that failed before starting: the key is
  `COALESCE(column, -1)`, so NULLs come first in ascending order and last in descending order, and a
  page boundary among them works like any other (ties are broken by `recording_id`).
* Strings (`room_name`, and `recording_id` as the tiebreak) compare by code point: SQLite's default
  BINARY collation does; PostgreSQL uses `COLLATE "C"`, whatever the database's own collation is.

`-1` is written into the SQL as a literal (not a bound parameter) so that an index on the same
expression (`coalesce(start_date, -1)`, ...) can serve the conditions and the ORDER BY.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select
from sqlalchemy.orm import QueryableAttribute

from callrec.storage import textmatch
from callrec.storage.catalog import Catalog
from callrec.storage.rows import RecordingRow
from callrec.storage.textmatch import MatchMode

NULL_KEY = -1

SortValue = int | float | str


class SortField(StrEnum):
    START_DATE = "startDate"
    ROOM_NAME = "roomName"
    DURATION = "duration"
    SIZE = "size"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class RecordingFilter:
    room_id: str | None = None
    status: str | None = None
    room_name: str | None = None
    room_name_match: MatchMode = MatchMode.EXACT
    room_name_case_insensitive: bool = False
    # Meet's combination: with both `room_id` and `room_name`, a recording matches either (OR). False when
    # `room_id` is a scope the caller is held to (a member token's room): then both must match.
    room_id_or_name: bool = False
    # The rooms a user-role caller reaches (owned or a registered member of), whatever else matches; None: any.
    # Not part of `canonical`: it is applied afresh on every page, from the caller's rooms as they are then.
    room_ids: tuple[str, ...] | None = None

    def canonical(self) -> dict[str, Any]:
        """What identifies this filter set (for page tokens): equal filters give equal dicts."""
        return {
            "roomId": self.room_id,
            "status": self.status,
            "roomName": self.room_name,
            "match": self.room_name_match.value if self.room_name is not None else None,
            "ci": self.room_name_case_insensitive if self.room_name is not None else None,
            "or": self.room_id_or_name if self.room_id is not None and self.room_name is not None else None,
        }


@dataclass(frozen=True, slots=True)
class After:
    """Where the previous page ended: its last row's sort value (as `sort_value` gives it) and id."""

    value: SortValue
    recording_id: str


def sort_value(row: RecordingRow, field: SortField) -> SortValue:
    """The value a row sorts by, NULLs replaced as the database does (`COALESCE(column, -1)`)."""
    if field is SortField.ROOM_NAME:
        return row.room_name
    value: int | float | None = {
        SortField.START_DATE: row.start_date,
        SortField.DURATION: row.duration,
        SortField.SIZE: row.size,
    }[field]
    return NULL_KEY if value is None else value


def _bytewise(column: QueryableAttribute[str], dialect: str) -> ColumnElement[str]:
    expression = column.expression
    return expression.collate("C") if dialect == "postgresql" else expression


def _sort_key(field: SortField, dialect: str) -> ColumnElement[Any]:
    if field is SortField.ROOM_NAME:
        return _bytewise(RecordingRow.room_name, dialect)
    column = {
        SortField.START_DATE: RecordingRow.start_date,
        SortField.DURATION: RecordingRow.duration,
        SortField.SIZE: RecordingRow.size,
    }[field]
    return func.coalesce(column, literal_column(str(NULL_KEY)))


def _name_condition(filters: RecordingFilter, dialect: str) -> ColumnElement[bool] | None:
    name = filters.room_name
    if name is None:
        return None
    return textmatch.condition(
        RecordingRow.room_name, name, filters.room_name_match, filters.room_name_case_insensitive, dialect
    )


def _filtered(filters: RecordingFilter, dialect: str) -> Select[Any]:
    query = select(RecordingRow)
    name = _name_condition(filters, dialect)
    if filters.room_id is not None and name is not None and filters.room_id_or_name:
        query = query.where(or_(RecordingRow.room_id == filters.room_id, name))
    else:
        if filters.room_id is not None:
            query = query.where(RecordingRow.room_id == filters.room_id)
        if name is not None:
            query = query.where(name)
    if filters.status is not None:
        query = query.where(RecordingRow.status == filters.status)
    if filters.room_ids is not None:
        query = query.where(RecordingRow.room_id.in_(filters.room_ids))
    return query


def page_queries(
    dialect: str,
    filters: RecordingFilter,
    sort_field: SortField,
    sort_order: SortOrder,
    after: After | None,
) -> tuple[Select[Any] | None, Select[Any]]:
    """The queries (without LIMIT) for a page after `after`: the rows tied with its value (None for the
    first page), then the rows beyond its value, each in listing order."""
    key = _sort_key(sort_field, dialect)
    rid = _bytewise(RecordingRow.recording_id, dialect)
    base = _filtered(filters, dialect)
    asc = sort_order is SortOrder.ASC
    ordered = (key.asc(), rid.asc()) if asc else (key.desc(), rid.desc())
    if after is None:
        return None, base.order_by(*ordered)
    value, last_id = after.value, after.recording_id
    ties = base.where(key == value, rid > last_id if asc else rid < last_id)
    beyond = base.where(key > value if asc else key < value)
    return ties.order_by(rid.asc() if asc else rid.desc()), beyond.order_by(*ordered)


async def list_recordings(
    catalog: Catalog,
    filters: RecordingFilter,
    sort_field: SortField = SortField.START_DATE,
    sort_order: SortOrder = SortOrder.DESC,
    limit: int = 10,
    after: After | None = None,
) -> tuple[list[RecordingRow], bool]:
    """One page of at most `limit` recordings after `after`, and whether more follow it."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    ties, beyond = page_queries(catalog.engine.dialect.name, filters, sort_field, sort_order, after)
    rows: list[RecordingRow] = []
    async with catalog.sessions() as session:
        if ties is not None:
            rows += (await session.execute(ties.limit(limit + 1))).scalars()
        if len(rows) <= limit:
            rows += (await session.execute(beyond.limit(limit + 1 - len(rows)))).scalars()
    return rows[:limit], len(rows) > limit
