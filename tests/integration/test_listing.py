"""Listing recordings on SQLite and PostgreSQL: keyset pages over 10,000 rows in every sort, the filters,
the query plans with the recommended indexes, and `GET /api/v1/recordings` over real HTTP."""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Iterable
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from callrec.api import cursor
from callrec.domain.recording import RecordingStatus
from callrec.storage.catalog import Catalog, create_schema
from callrec.storage.listing import (
    NULL_KEY,
    After,
    MatchMode,
    RecordingFilter,
    SortField,
    SortOrder,
    list_recordings,
    sort_value,
)
from callrec.storage.rows import IN_PROGRESS, RecordingRow
from tests.conftest import API_KEY, POSTGRES_URL, StackFactory

KEY = cursor.derive_key(API_KEY)
COLUMN = {
    SortField.START_DATE: "start_date",
    SortField.ROOM_NAME: "room_name",
    SortField.DURATION: "duration",
    SortField.SIZE: "size",
}
# Mixed case, LIKE metacharacters, non-ASCII (code point order differs from most locales' order).
ROOM_NAMES = [
    "Weekly sync",
    "weekly sync",
    "WEEKLY SYNC",
    "Weekly",
    "Weekly review",
    "Biweekly sync",
    "100% done",
    "100x done",
    "a_b",
    "axb",
    "a\\b",
    "ab",
    "Daily_Standup",
    "DailyXStandup",
    "Äpfel",
    "äpfel",
    "zeta",
    "Zeta",
    "émile",
    "日本語",
]
TERMINAL = [s.value for s in RecordingStatus if not s.in_progress]


def make_rows(count: int, seed: int = 7, names: list[str] = ROOM_NAMES) -> list[dict[str, Any]]:
    """Recordings with many ties in every sort key, and NULLs where recordings failed before starting."""
    rnd = random.Random(seed)
    start_dates = [1_700_000_000_000 + rnd.randrange(10**9) for _ in range(max(count // 4, 1))]
    durations = [round(rnd.uniform(0.5, 3600), 3) for _ in range(max(count // 20, 1))]
    sizes = [rnd.randrange(1_000, 10**10) for _ in range(max(count // 10, 1))]
    busy: set[str] = set()
    rows = []
    for n in range(count):
        name = rnd.choice(names)
        room_id = f"room-{names.index(name)}-{rnd.randrange(3)}"
        uid = "".join(rnd.choices(string.ascii_letters + string.digits, k=6))
        row: dict[str, Any] = {
            "recording_id": f"{room_id}--EG_{uid}--{n:05d}",
            "room_id": room_id,
            "room_name": name,
            "status": rnd.choice(TERMINAL),
            "layout": "grid",
            "encoding": "H264_720P_30",
            "filename": f"r{n}.mp4",
            "start_date": rnd.choice(start_dates),
            "duration": rnd.choice(durations),
            "size": rnd.choice(sizes) if rnd.random() > 0.1 else None,
            "creation_date": 1_700_000_000_000 + n,
            "public_secret": "public",
            "private_secret": "private",
        }
        if rnd.random() < 0.12:  # failed before starting
            row |= {"status": "failed", "start_date": None, "duration": None, "size": None}
        elif room_id not in busy and rnd.random() < 0.3:  # one in progress per room at most
            busy.add(room_id)
            row |= {"status": rnd.choice(IN_PROGRESS), "duration": None, "size": None}
        rows.append(row)
    return rows


async def insert_rows(catalog: Catalog, rows: list[dict[str, Any]]) -> None:
    async with catalog.engine.begin() as conn:
        await conn.execute(insert(RecordingRow), rows)


def expected_order(rows: Iterable[dict[str, Any]], field: SortField, order: SortOrder) -> list[str]:
    """The listing order in Python: NULL counts as -1, ties by recording_id, strings by code point."""

    def key(row: dict[str, Any]) -> tuple[Any, str]:
        value = row[COLUMN[field]]
        return (NULL_KEY if value is None else value, row["recording_id"])

    ordered = [row["recording_id"] for row in sorted(rows, key=key)]
    return ordered[::-1] if order is SortOrder.DESC else ordered


async def page_through(
    catalog: Catalog, filters: RecordingFilter, field: SortField, order: SortOrder, limit: int
) -> list[str]:
    """Every page, each continued from the previous one's token (as the route does)."""
    seen: list[str] = []
    after = None
    while True:
        rows, more = await list_recordings(catalog, filters, field, order, limit, after)
        seen += [row.recording_id for row in rows]
        if not more:
            assert len(rows) <= limit
            return seen
        assert len(rows) == limit
        last = rows[-1]
        token = cursor.encode(KEY, field, order, filters.canonical(), After(sort_value(last, field), last.recording_id))
        after = cursor.decode(KEY, token, field, order, filters.canonical())


async def check_every_sort(catalog: Catalog, rows: list[dict[str, Any]], fields: list[SortField]) -> None:
    for field in fields:
        for order in SortOrder:
            seen = await page_through(catalog, RecordingFilter(), field, order, 100)
            expected = expected_order(rows, field, order)
            assert len(seen) == len(set(seen)), f"{field} {order}: a row came twice"
            assert set(seen) == set(expected), f"{field} {order}: rows missing"
            assert seen == expected, f"{field} {order}: out of order"


@pytest.mark.parametrize("field", list(SortField))
async def test_paging_through_10000_recordings(catalog: Catalog, field: SortField) -> None:
    rows = make_rows(10_000)
    started = time.monotonic()
    await insert_rows(catalog, rows)
    assert time.monotonic() - started < 10
    if field is not SortField.ROOM_NAME:
        nulls = sum(row[COLUMN[field]] is None for row in rows)
        assert 900 < nulls < 3000  # a big tie group: page boundaries fall inside it
    await check_every_sort(catalog, rows, [field])


async def test_ties_and_nulls_at_page_boundaries(catalog: Catalog) -> None:
    """Every boundary inside a tie group, with page sizes that do and do not divide the groups."""
    rows = make_rows(60, seed=3, names=["Same"])
    for n, row in enumerate(rows):
        row |= {"start_date": None if n % 3 == 0 else 5, "duration": None if n % 2 else 1.5, "size": 7}
    await insert_rows(catalog, rows)
    for field in SortField:
        for order in SortOrder:
            expected = expected_order(rows, field, order)
            for limit in (1, 2, 7, 20, 59, 60, 61):
                assert await page_through(catalog, RecordingFilter(), field, order, limit) == expected


async def test_strings_sort_by_code_point_whatever_the_database_collation() -> None:
    """PostgreSQL with an ICU en-US database: roomName and the id tiebreak still sort as on SQLite."""
    if not POSTGRES_URL:
        pytest.skip("CALLREC_TEST_POSTGRES_URL is not set")
    name = f"callrec_icu_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(
            text(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    catalog = Catalog.from_url(POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        await create_schema(catalog.engine)
        rows = make_rows(1_000, seed=17)
        await insert_rows(catalog, rows)
        async with catalog.engine.connect() as conn:
            native = await conn.execute(text("SELECT recording_id FROM recordings ORDER BY room_name, recording_id"))
            assert list(native.scalars()) != expected_order(rows, SortField.ROOM_NAME, SortOrder.ASC)  # en-US differs
        for field in SortField:
            for order in SortOrder:
                seen = await page_through(catalog, RecordingFilter(), field, order, 37)
                assert seen == expected_order(rows, field, order), f"{field} {order}"
    finally:
        await catalog.close()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def names_of(found: Iterable[RecordingRow]) -> set[str]:
    return {row.room_name for row in found}


NAME_CASES: list[tuple[str, MatchMode, bool, set[str]]] = [
    ("Weekly", MatchMode.EXACT, False, {"Weekly"}),
    ("weekly", MatchMode.EXACT, False, set()),
    ("weekly", MatchMode.EXACT, True, {"Weekly"}),
    ("weekly sync", MatchMode.EXACT, False, {"weekly sync"}),
    ("weekly SYNC", MatchMode.EXACT, True, {"Weekly sync", "weekly sync", "WEEKLY SYNC"}),
    ("Weekly", MatchMode.PREFIX, False, {"Weekly sync", "Weekly", "Weekly review"}),
    ("weekly", MatchMode.PREFIX, False, {"weekly sync"}),
    ("wEEKLY", MatchMode.PREFIX, True, {"Weekly sync", "weekly sync", "WEEKLY SYNC", "Weekly", "Weekly review"}),
    ("eekly", MatchMode.PREFIX, False, set()),
    ("eekly", MatchMode.PARTIAL, False, {"Weekly sync", "weekly sync", "Weekly", "Weekly review", "Biweekly sync"}),
    ("EEKLY", MatchMode.PARTIAL, False, {"WEEKLY SYNC"}),
    (
        "EEKLY",
        MatchMode.PARTIAL,
        True,
        {"Weekly sync", "weekly sync", "WEEKLY SYNC", "Weekly", "Weekly review", "Biweekly sync"},
    ),
    ("sync", MatchMode.PARTIAL, False, {"Weekly sync", "weekly sync", "Biweekly sync"}),
    # LIKE metacharacters match themselves only.
    ("100%", MatchMode.PREFIX, False, {"100% done"}),
    ("%", MatchMode.PARTIAL, False, {"100% done"}),
    ("%", MatchMode.PREFIX, True, set()),
    ("% d", MatchMode.PARTIAL, True, {"100% done"}),
    ("_", MatchMode.PARTIAL, False, {"a_b", "Daily_Standup"}),
    ("a_b", MatchMode.EXACT, False, {"a_b"}),
    ("a_b", MatchMode.PREFIX, False, {"a_b"}),
    ("A_B", MatchMode.PARTIAL, True, {"a_b"}),
    ("daily_", MatchMode.PREFIX, True, {"Daily_Standup"}),
    ("a\\b", MatchMode.EXACT, False, {"a\\b"}),
    ("a\\", MatchMode.PREFIX, False, {"a\\b"}),
    ("\\", MatchMode.PARTIAL, True, {"a\\b"}),
    ("\\%", MatchMode.PARTIAL, False, set()),
    ("pfel", MatchMode.PARTIAL, False, {"Äpfel", "äpfel"}),
    ("Äp", MatchMode.PREFIX, False, {"Äpfel"}),
    ("日本", MatchMode.PREFIX, True, {"日本語"}),
]


async def test_room_name_filters(catalog: Catalog) -> None:
    # Every name twice, in two rooms: each filter's answer is a set of names.
    rows = [
        make_rows(1, seed=n)[0] | {"recording_id": f"r-{n:03d}", "room_id": f"room-{n}", "room_name": room_name}
        for n, room_name in enumerate(ROOM_NAMES * 2)
    ]
    await insert_rows(catalog, rows)
    for name, mode, ci, expected in NAME_CASES:
        filters = RecordingFilter(room_name=name, room_name_match=mode, room_name_case_insensitive=ci)
        found, more = await list_recordings(catalog, filters, limit=100)
        assert (names_of(found), len(found), more) == (expected, 2 * len(expected), False), (name, mode, ci)


async def test_room_id_and_status_filters_and_paging_with_filters(catalog: Catalog) -> None:
    rows = make_rows(1_500, seed=5)
    await insert_rows(catalog, rows)
    room_id = rows[0]["room_id"]

    def where(**wanted: Any) -> list[dict[str, Any]]:
        return [row for row in rows if all(row[column] == value for column, value in wanted.items())]

    cases = [
        (RecordingFilter(room_id=room_id), where(room_id=room_id)),
        (RecordingFilter(status="failed"), where(status="failed")),
        (RecordingFilter(room_id=room_id, status="complete"), where(room_id=room_id, status="complete")),
        (RecordingFilter(status="active"), where(status="active")),
        (RecordingFilter(room_id="no-such-room"), []),
        (
            RecordingFilter(status="complete", room_name="week", room_name_match=MatchMode.PARTIAL),
            [r for r in where(status="complete") if "week" in r["room_name"]],
        ),
        (
            RecordingFilter(room_name="weekly sync", room_name_case_insensitive=True),
            [r for r in rows if r["room_name"].lower() == "weekly sync"],
        ),
    ]
    for filters, matching in cases:
        assert matching or filters.room_id == "no-such-room"
        for field, order in [(SortField.START_DATE, SortOrder.DESC), (SortField.SIZE, SortOrder.ASC)]:
            assert await page_through(catalog, filters, field, order, 7) == expected_order(matching, field, order)


async def test_the_catalog_indexes_make_every_page_an_index_seek(catalog: Catalog) -> None:
    """With the catalog's indexes, each query of a deep page seeks; none scans or sorts."""
    rows = make_rows(10_000, seed=13)
    await insert_rows(catalog, rows)
    dialect = catalog.engine.dialect.name
    async with catalog.engine.begin() as conn:
        if dialect == "sqlite":
            listed = await conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        else:
            listed = await conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'recordings'"))
        existing: set[str] = set(listed.scalars())
        # The catalog's own schema carries them (only this dialect's, through ddl_if).
        assert {"ix_recordings_by_start_date", "ix_recordings_by_room_name"} <= existing or {
            "ix_recordings_by_start_date_pg",
            "ix_recordings_by_room_name_pg",
        } <= existing
        await conn.execute(text("ANALYZE recordings" if dialect == "postgresql" else "ANALYZE"))

    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    for field in SortField:
        for order in SortOrder:
            expected = expected_order(rows, field, order)
            by_id = {row["recording_id"]: row for row in rows}
            for position in (len(expected) * 9 // 10, len(expected) // 2, 600):
                last = by_id[expected[position]]
                value = last[COLUMN[field]]
                after = After(NULL_KEY if value is None else value, last["recording_id"])
                event.listen(catalog.engine.sync_engine, "before_cursor_execute", capture)
                try:
                    page, _ = await list_recordings(catalog, RecordingFilter(), field, order, 100, after)
                finally:
                    event.remove(catalog.engine.sync_engine, "before_cursor_execute", capture)
                assert [row.recording_id for row in page] == expected[position + 1 : position + 101]
                # The rows tied with the last value after its id, then (if the page is not full) the rows beyond.
                assert 1 <= len(statements) <= 2
                for n, (statement, parameters) in enumerate(statements):
                    plan = await explain(catalog, statement, parameters)
                    assert_seeks(dialect, plan, ties=n == 0, where=f"{field} {order} @{position}: {statement}")
                statements.clear()


async def explain(catalog: Catalog, statement: str, parameters: Any) -> str:
    async with catalog.engine.connect() as conn:
        if catalog.engine.dialect.name == "sqlite":
            result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in result)
        result = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(str(row[0]) for row in result)


def assert_seeks(dialect: str, plan: str, *, ties: bool, where: str) -> None:
    """The plan reads only rows the index bounds: no table scan, no sort of everything, no filtered-out rows."""
    message = f"{where}\n{plan}"
    if dialect == "sqlite":
        assert "SEARCH recordings USING INDEX ix_recordings_by_" in plan, message
        assert "SCAN" not in plan and "TEMP B-TREE" not in plan, message
        assert ("recording_id>" in plan or "recording_id<" in plan) == ties, message
        return
    assert "ix_recordings_by_" in plan and "Seq Scan" not in plan and "Filter:" not in plan, message
    conditions = [line for line in plan.splitlines() if "Index Cond:" in line]
    assert len(conditions) == 1, message
    assert ("recording_id" in conditions[0]) == ties, message
    # A sort is fine only over what the index condition found (PostgreSQL sorts a handful of tied rows).
    assert "Sort" not in plan or "Bitmap Index Scan" in plan, message


# ------------------------------------------------------------------ over HTTP


def http_rows(count: int, seed: int = 1) -> list[dict[str, Any]]:
    return make_rows(count, seed=seed)


async def get_list(api: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await api.get("/api/v1/recordings", params=params)


async def walk(api: httpx.AsyncClient, **params: Any) -> list[str]:
    seen: list[str] = []
    token = None
    while True:
        response = await get_list(api, **params, **({"nextPageToken": token} if token else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"recordings", "pagination"}
        assert set(body["pagination"]) == {"isTruncated", "nextPageToken", "maxItems"}
        seen += [recording["recordingId"] for recording in body["recordings"]]
        token = body["pagination"]["nextPageToken"]
        assert body["pagination"]["isTruncated"] == (token is not None)
        if token is None:
            return seen
        assert len(body["recordings"]) == body["pagination"]["maxItems"]


async def test_http_listing_pages_sorts_and_filters(stacks: StackFactory, catalog_url: str) -> None:
    stack = await stacks.start(recorder=False, database_url=catalog_url)
    api = stack.api
    rows = http_rows(250)
    await insert_rows(stack.catalog, rows)

    first = await get_list(api)
    assert first.status_code == 200
    body = first.json()
    assert body["pagination"]["maxItems"] == 10 and body["pagination"]["isTruncated"] is True
    assert [r["recordingId"] for r in body["recordings"]] == expected_order(rows, SortField.START_DATE, SortOrder.DESC)[
        :10
    ]
    every_field = {
        "recordingId", "roomId", "roomName", "status", "layout", "encoding", "filename", "startDate",
        "endDate", "duration", "size", "errorCode", "error", "details",
    }  # fmt: skip
    by_id = {row["recording_id"]: row for row in rows}
    for recording in body["recordings"]:  # a field without a value is left out (Meet's optional fields), never null
        assert {"recordingId", "roomId", "roomName", "status"} <= set(recording) <= every_field, recording
        assert None not in recording.values(), recording
        row = by_id[recording["recordingId"]]
        assert ("size" in recording) == (row["size"] is not None), recording
        assert ("startDate" in recording) == (row["start_date"] is not None), recording

    assert await walk(api, maxItems=30) == expected_order(rows, SortField.START_DATE, SortOrder.DESC)
    assert await walk(api, maxItems=17, sortField="size", sortOrder="asc") == expected_order(
        rows, SortField.SIZE, SortOrder.ASC
    )
    assert await walk(api, maxItems=40, sortField="roomName") == expected_order(
        rows, SortField.ROOM_NAME, SortOrder.DESC
    )
    weekly = [row for row in rows if row["room_name"].lower().startswith("weekly") and row["status"] == "complete"]
    assert weekly
    params = {"roomName": "WEEKLY", "roomNameMatchMode": "prefix", "roomNameCaseInsensitive": "true"}
    assert await walk(api, maxItems=3, status="complete", sortField="duration", **params) == expected_order(
        weekly, SortField.DURATION, SortOrder.DESC
    )
    case_sensitive = await walk(api, maxItems=100, roomName="WEEKLY", roomNameMatchMode="prefix")
    assert case_sensitive == expected_order(
        [row for row in rows if row["room_name"].startswith("WEEKLY")], SortField.START_DATE, SortOrder.DESC
    )
    room_id = rows[0]["room_id"]
    assert await walk(api, roomId=room_id, maxItems=100, someUnknownParam="x") == expected_order(
        [row for row in rows if row["room_id"] == room_id], SortField.START_DATE, SortOrder.DESC
    )

    # maxItems above 100 is 100, not an error; the last page says so and has no token.
    for asked in (100, 101, 500, 10**12):
        clamped = (await get_list(api, maxItems=asked)).json()
        assert clamped["pagination"]["maxItems"] == 100 and len(clamped["recordings"]) == 100
    last = (await get_list(api, maxItems=100, roomId=room_id)).json()["pagination"]
    assert last == {"isTruncated": False, "nextPageToken": None, "maxItems": 100}


async def test_http_bad_parameters_and_tokens_are_422(stacks: StackFactory, catalog_url: str) -> None:
    stack = await stacks.start(recorder=False, database_url=catalog_url)
    api = stack.api
    await insert_rows(stack.catalog, http_rows(30, seed=2))

    for param, value in [
        ("maxItems", 0),
        ("maxItems", -5),
        ("maxItems", "ten"),
        ("sortField", "creationDate"),
        ("sortOrder", "up"),
        ("status", "done"),
        ("roomNameMatchMode", "fuzzy"),
        ("roomNameCaseInsensitive", "maybe"),
        ("roomName", ""),
    ]:
        response = await get_list(api, **{param: value})
        assert response.status_code == 422, (param, value, response.text)
        assert [detail["field"] for detail in response.json()["details"]] == [param], response.text

    page = (await get_list(api, maxItems=5)).json()
    first_page, token = page["recordings"], page["pagination"]["nextPageToken"]
    assert isinstance(token, str)
    middle = len(token) // 2
    flipped_middle = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    flipped_last = token[:-1] + ("A" if token[-1] != "A" else "B")
    bad_tokens: list[tuple[str, dict[str, Any]]] = [
        (flipped_middle, {}),
        (flipped_last, {}),
        (token[:-3], {}),
        (token + "x", {}),
        ("!!!", {}),
        ("garbage", {}),
        ("=" * 8, {}),
        ("x" * 5000, {}),
        (token, {"sortOrder": "asc"}),
        (token, {"sortField": "size"}),
        (token, {"status": "failed"}),
        (token, {"roomName": "Weekly"}),
        (token, {"roomId": "room-0-0"}),
    ]
    for bad, params in bad_tokens:
        response = await get_list(api, maxItems=5, nextPageToken=bad, **params)
        assert response.status_code == 422, (bad, params, response.text)
        assert response.json()["details"][0]["field"] == "nextPageToken"
    assert (await get_list(api, maxItems=5, nextPageToken="")).json()["recordings"] == first_page
    # maxItems is not part of the listing: the token goes on with another page size.
    assert (await get_list(api, maxItems=7, nextPageToken=token)).status_code == 200


async def test_http_fields_projection_on_list_and_get(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    api = stack.api
    rows = [row | {"status": "complete", "start_date": 1_700_000_000_000, "duration": 2.5, "size": 1000}
            for row in http_rows(12, seed=4)]  # fmt: skip
    await insert_rows(stack.catalog, rows)
    one = rows[0]["recording_id"]

    def keys(response: httpx.Response) -> list[set[str]]:
        assert response.status_code == 200, response.text
        body = response.json()
        return [set(r) for r in body["recordings"]] if "recordings" in body else [set(body)]

    everything = keys(await api.get(f"/api/v1/recordings/{one}"))[0]
    # stored, never stopped by the API in this seed: no endDate, and no error fields (it did not fail)
    assert everything == {"recordingId", "roomId", "roomName", "status", "layout", "encoding", "filename",
                          "startDate", "duration", "size"}  # fmt: skip
    cases: list[tuple[dict[str, str], dict[str, str], set[str]]] = [
        ({"fields": "recordingId,status"}, {}, {"recordingId", "status"}),
        ({"fields": " recordingId , size ,,"}, {}, {"recordingId", "size"}),
        ({"fields": "recordingId,noSuchField"}, {}, {"recordingId"}),
        ({"fields": "noSuchField"}, {}, everything),
        ({"fields": ""}, {}, everything),
        ({}, {"X-Fields": "roomId,startDate"}, {"roomId", "startDate"}),
        ({"fields": "status"}, {"X-Fields": "roomId"}, {"status", "roomId"}),  # both sent: the union, as in Meet
        ({"fields": "recordingId,endDate"}, {}, {"recordingId"}),  # a field without a value selects nothing
        ({"fields": ""}, {"X-Fields": "roomId"}, {"roomId"}),  # an empty one does not
        ({}, {}, everything),
    ]
    for params, headers, expected in cases:
        listed = keys(await api.get("/api/v1/recordings", params=params | {"maxItems": 5}, headers=headers))
        assert listed == [expected] * 5, (params, headers)
        got = keys(await api.get(f"/api/v1/recordings/{one}", params=params, headers=headers))
        assert got == [expected], (params, headers)
    listed = (await api.get("/api/v1/recordings", params={"fields": "status", "maxItems": 5})).json()
    assert listed["pagination"]["isTruncated"] is True and listed["pagination"]["nextPageToken"]
