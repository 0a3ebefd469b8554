"""Catalog contract tests on SQLite and PostgreSQL: rooms, calls, and the recordings projection."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from callrec.storage.catalog import Catalog, RecordingInProgress, RoomNotFound, create_schema
from callrec.storage.rows import ChatMessageRow, NotificationRow, RecordingRow, RoomRow

IN_PROGRESS = ["starting", "active", "ending"]
TERMINAL = ["complete", "failed", "aborted", "limit_reached"]

_counter = itertools.count()


def room(room_id: str = "weekly-abc12345", config: dict[str, Any] | None = None) -> RoomRow:
    return RoomRow(room_id=room_id, room_name="Weekly", config=config or {"layout": "grid"}, creation_date=1_000)


def recording(
    room_id: str = "weekly-abc12345", status: str = "starting", creation_date: int | None = None
) -> RecordingRow:
    n = next(_counter)
    return RecordingRow(
        recording_id=f"{room_id}--EG_{n:012d}--abcde",
        room_id=room_id,
        room_name="Weekly",
        status=status,
        layout="grid",
        encoding="H264_720P_30",
        filename=f"recording-{n}.mp4",
        creation_date=creation_date if creation_date is not None else 1_000 + n,
    )


# ------------------------------------------------------------------ rooms


async def test_add_and_get_room(catalog: Catalog) -> None:
    await catalog.add_room(room("r1", {"layout": "speaker", "encoding": "H264_1080P_30"}))
    got = await catalog.get_room("r1")
    assert got is not None
    assert (got.room_id, got.room_name, got.creation_date) == ("r1", "Weekly", 1_000)
    assert got.config == {"layout": "speaker", "encoding": "H264_1080P_30"}


async def test_get_unknown_room_is_none(catalog: Catalog) -> None:
    assert await catalog.get_room("nope") is None


async def test_set_room_config_persists(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    new = {"enabled": False, "layout": "single-speaker", "encoding": {"video": {"width": 640, "height": 360}}}
    returned = await catalog.set_room_config("r1", new)
    assert returned.config == new
    got = await catalog.get_room("r1")
    assert got is not None and got.config == new


async def test_set_room_config_unknown_room(catalog: Catalog) -> None:
    with pytest.raises(RoomNotFound):
        await catalog.set_room_config("nope", {"layout": "grid"})
    assert await catalog.get_room("nope") is None


# ------------------------------------------------------------------ calls


async def test_put_call_creates_then_updates(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    alice = {"userId": "alice", "displayName": "Alice"}
    bob = {"userId": "bob", "displayName": "Bob"}

    created = await catalog.put_call("r1", [alice], 5_000)
    assert (created.participants, created.started_date, created.updated_date) == ([alice], 5_000, 5_000)

    updated = await catalog.put_call("r1", [alice, bob], 9_000)
    assert (updated.participants, updated.started_date, updated.updated_date) == ([alice, bob], 5_000, 9_000)

    got = await catalog.get_call("r1")
    assert got is not None
    assert (got.participants, got.started_date, got.updated_date) == ([alice, bob], 5_000, 9_000)


async def test_put_call_unknown_room(catalog: Catalog) -> None:
    with pytest.raises(RoomNotFound):
        await catalog.put_call("nope", [], 5_000)
    assert await catalog.get_call("nope") is None


async def test_end_call(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    await catalog.put_call("r1", [{"userId": "alice"}], 5_000)
    assert await catalog.end_call("r1") is True
    assert await catalog.get_call("r1") is None
    assert await catalog.end_call("r1") is False


async def test_end_call_without_call(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    assert await catalog.end_call("r1") is False
    assert await catalog.end_call("nope") is False


async def test_new_call_after_end_starts_fresh(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    await catalog.put_call("r1", [], 5_000)
    await catalog.end_call("r1")
    again = await catalog.put_call("r1", [], 7_000)
    assert (again.started_date, again.updated_date) == (7_000, 7_000)


async def test_calls_of_rooms_are_separate(catalog: Catalog) -> None:
    await catalog.add_room(room("r1"))
    await catalog.add_room(room("r2"))
    await catalog.put_call("r1", [{"userId": "a"}], 1)
    await catalog.put_call("r2", [{"userId": "b"}], 2)
    await catalog.end_call("r1")
    got = await catalog.get_call("r2")
    assert got is not None and got.participants == [{"userId": "b"}]


# ------------------------------------------------------------------ one recording in progress per room


async def test_add_and_get_recording(catalog: Catalog) -> None:
    row = recording("r1")
    await catalog.add_recording(row)
    got = await catalog.get_recording(row.recording_id)
    assert got is not None
    assert (got.room_id, got.status, got.encoding, got.seq) == ("r1", "starting", "H264_720P_30", 0)
    assert await catalog.get_recording("r1--EG_missing--x") is None


@pytest.mark.parametrize("first", IN_PROGRESS)
@pytest.mark.parametrize("second", IN_PROGRESS)
async def test_second_in_progress_recording_is_refused(catalog: Catalog, first: str, second: str) -> None:
    existing = await catalog.add_recording(recording("r1", first))
    with pytest.raises(RecordingInProgress):
        await catalog.add_recording(recording("r1", second))
    assert [r.recording_id for r in await catalog.recordings(room_id="r1")] == [existing.recording_id]


@pytest.mark.parametrize("status", IN_PROGRESS)
async def test_other_rooms_do_not_block(catalog: Catalog, status: str) -> None:
    await catalog.add_recording(recording("r1", status))
    await catalog.add_recording(recording("r2", status))
    assert len(await catalog.recordings()) == 2


@pytest.mark.parametrize("terminal", TERMINAL)
async def test_terminal_recordings_do_not_block(catalog: Catalog, terminal: str) -> None:
    await catalog.add_recording(recording("r1", terminal))
    await catalog.add_recording(recording("r1", terminal))
    await catalog.add_recording(recording("r1", "starting"))
    # and an in-progress one does not block adding terminal ones either
    await catalog.add_recording(recording("r1", terminal))
    assert len(await catalog.recordings(room_id="r1")) == 4


async def test_new_recording_once_the_previous_is_complete(catalog: Catalog) -> None:
    first = await catalog.add_recording(recording("r1", "starting"))
    assert await catalog.project_recording(first.recording_id, 1, {"status": "active"})
    with pytest.raises(RecordingInProgress):
        await catalog.add_recording(recording("r1"))
    assert await catalog.project_recording(first.recording_id, 2, {"status": "complete"})
    second = await catalog.add_recording(recording("r1"))
    in_progress = await catalog.recording_in_progress("r1")
    assert in_progress is not None and in_progress.recording_id == second.recording_id


async def test_concurrent_adds_from_two_processes(catalog_url: str) -> None:
    one, two = Catalog.from_url(catalog_url), Catalog.from_url(catalog_url)
    try:
        await create_schema(one.engine)
        for _ in range(5):
            room_id = f"race-{next(_counter)}"
            rows = [recording(room_id), recording(room_id)]
            results = await asyncio.gather(
                one.add_recording(rows[0]), two.add_recording(rows[1]), return_exceptions=True
            )
            assert sum(isinstance(r, RecordingRow) for r in results) == 1, results
            assert sum(isinstance(r, RecordingInProgress) for r in results) == 1, results
            winner = next(row for row, r in zip(rows, results, strict=True) if isinstance(r, RecordingRow))
            for catalog in (one, two):
                stored = await catalog.recordings(room_id=room_id)
                assert [r.recording_id for r in stored] == [winner.recording_id]
    finally:
        await one.close()
        await two.close()


# ------------------------------------------------------------------ projection


async def test_project_recording_applies_newer_seq(catalog: Catalog) -> None:
    row = await catalog.add_recording(recording("r1"))
    assert await catalog.project_recording(row.recording_id, 3, {"status": "active", "start_date": 10_000})
    got = await catalog.get_recording(row.recording_id)
    assert got is not None
    assert (got.status, got.start_date, got.seq) == ("active", 10_000, 3)


async def test_project_recording_ignores_stale_and_equal_seq(catalog: Catalog) -> None:
    row = await catalog.add_recording(recording("r1"))
    done = {"status": "complete", "end_date": 20_000, "duration": 10.0, "size": 1234, "sha256": "ab" * 32}
    assert await catalog.project_recording(row.recording_id, 5, done)
    assert await catalog.project_recording(row.recording_id, 4, {"status": "active", "end_date": None}) is False
    assert await catalog.project_recording(row.recording_id, 5, {"status": "ending"}) is False
    got = await catalog.get_recording(row.recording_id)
    assert got is not None
    assert (got.status, got.end_date, got.duration, got.size, got.sha256, got.seq) == (
        "complete",
        20_000,
        10.0,
        1234,
        "ab" * 32,
        5,
    )
    assert await catalog.recording_in_progress("r1") is None


async def test_project_recording_seq_zero_is_not_newer_than_a_new_row(catalog: Catalog) -> None:
    row = await catalog.add_recording(recording("r1"))
    assert await catalog.project_recording(row.recording_id, 0, {"status": "active"}) is False
    got = await catalog.get_recording(row.recording_id)
    assert got is not None and got.status == "starting"


async def test_project_unknown_recording(catalog: Catalog) -> None:
    assert await catalog.project_recording("r1--EG_missing--abcde", 1, {"status": "active"}) is False
    assert await catalog.get_recording("r1--EG_missing--abcde") is None


async def test_project_only_touches_its_recording(catalog: Catalog) -> None:
    mine = await catalog.add_recording(recording("r1"))
    other = await catalog.add_recording(recording("r2"))
    await catalog.project_recording(mine.recording_id, 1, {"status": "failed", "error_code": 500, "error": "x"})
    got = await catalog.get_recording(other.recording_id)
    assert got is not None and (got.status, got.seq, got.error_code) == ("starting", 0, None)


async def test_project_json_fields(catalog: Catalog) -> None:
    row = await catalog.add_recording(recording("r1"))
    media = {"video": {"codec": "h264", "width": 1280}, "audio": {"codec": "aac"}}
    assert await catalog.project_recording(row.recording_id, 1, {"media": media, "object_key": "k/r1.mp4"})
    got = await catalog.get_recording(row.recording_id)
    assert got is not None and got.media == media and got.object_key == "k/r1.mp4"


# ------------------------------------------------------------------ queries


async def test_recordings_filter_and_order(catalog: Catalog) -> None:
    r1_old = await catalog.add_recording(recording("r1", "complete", creation_date=100))
    r2 = await catalog.add_recording(recording("r2", "active", creation_date=200))
    r1_failed = await catalog.add_recording(recording("r1", "failed", creation_date=300))
    r1_live = await catalog.add_recording(recording("r1", "active", creation_date=400))
    r1_mid = await catalog.add_recording(recording("r1", "complete", creation_date=250))

    def ids(rows: Any) -> list[str]:
        return [r.recording_id for r in rows]

    assert ids(await catalog.recordings()) == ids([r1_live, r1_failed, r1_mid, r2, r1_old])
    assert ids(await catalog.recordings(room_id="r1")) == ids([r1_live, r1_failed, r1_mid, r1_old])
    assert ids(await catalog.recordings(room_id="r2")) == ids([r2])
    assert ids(await catalog.recordings(status="complete")) == ids([r1_mid, r1_old])
    assert ids(await catalog.recordings(status="active")) == ids([r1_live, r2])
    assert ids(await catalog.recordings(room_id="r1", status="active")) == ids([r1_live])
    assert ids(await catalog.recordings(room_id="r2", status="complete")) == []
    assert ids(await catalog.recordings(room_id="nope")) == []
    assert ids(await catalog.recordings(limit=2)) == ids([r1_live, r1_failed])
    assert ids(await catalog.recordings(room_id="r1", status="complete", limit=1)) == ids([r1_mid])


async def test_status_filter_follows_projection(catalog: Catalog) -> None:
    row = await catalog.add_recording(recording("r1", "starting", creation_date=100))
    assert await catalog.recordings(status="complete") == []
    await catalog.project_recording(row.recording_id, 1, {"status": "complete"})
    assert [r.recording_id for r in await catalog.recordings(status="complete")] == [row.recording_id]
    assert await catalog.recordings(status="starting") == []


async def test_recording_in_progress(catalog: Catalog) -> None:
    assert await catalog.recording_in_progress("r1") is None
    await catalog.add_recording(recording("r1", "complete"))
    await catalog.add_recording(recording("r1", "aborted"))
    assert await catalog.recording_in_progress("r1") is None
    live = await catalog.add_recording(recording("r1", "ending"))
    await catalog.add_recording(recording("r2", "active"))
    found = await catalog.recording_in_progress("r1")
    assert found is not None and (found.recording_id, found.status) == (live.recording_id, "ending")
    await catalog.project_recording(live.recording_id, 1, {"status": "limit_reached"})
    assert await catalog.recording_in_progress("r1") is None
    other = await catalog.recording_in_progress("r2")
    assert other is not None and other.room_id == "r2"


def _notification(key: str | None, **fields: object) -> NotificationRow:
    values: dict[str, object] = {
        "dedupe_key": key,
        "room_id": "room",
        "recording_id": "rec-1",
        "user": "alice",
        "moderators": False,
        "subject": "record_file_stored",
        "message": "available",
        "file_id": 7,
        "timestamp": 1_700_000_000,
    }
    return NotificationRow(**(values | fields))


async def test_a_retried_notification_is_stored_once(catalog: Catalog) -> None:
    first = await catalog.add_notification(_notification("rec-1:record_file_stored"))
    again = await catalog.add_notification(_notification("rec-1:record_file_stored", timestamp=1_800_000_000))
    assert again.notification_id == first.notification_id and again.timestamp == first.timestamp
    # Notifications without a key (a failed upload's) are all kept.
    await catalog.add_notification(_notification(None, subject="record_file_store_fail"))
    await catalog.add_notification(_notification(None, subject="record_file_store_fail"))
    assert len(await catalog.notifications(room_id="room")) == 3


async def test_notifications_by_audience_and_closing(catalog: Catalog) -> None:
    mine = await catalog.add_notification(_notification("a", user="alice"))
    moderators = await catalog.add_notification(_notification("b", user=None, moderators=True, recording_id="rec-2"))
    await catalog.add_notification(_notification("c", user="bob", room_id="other", recording_id="rec-3"))

    def ids(rows: Sequence[NotificationRow]) -> set[int]:
        return {row.notification_id for row in rows}

    assert ids(await catalog.notifications(room_id="room", user="alice")) == {mine.notification_id}
    seen_by_moderator = await catalog.notifications(room_id="room", user="carol", moderators=True)
    assert ids(seen_by_moderator) == {moderators.notification_id}
    assert len(await catalog.notifications()) == 3

    assert await catalog.close_notifications("shared", recording_id="rec-1") == 1
    assert await catalog.close_notifications("dismissed", recording_id="rec-1") == 0  # already closed
    assert await catalog.close_notifications("expired", notification_id=moderators.notification_id) == 1
    assert ids(await catalog.notifications(room_id="room")) == set()
    at = await catalog.room_notifications_at("room", 1_700_000_000)
    assert {(row.notification_id, row.state) for row in at} == {
        (mine.notification_id, "shared"),
        (moderators.notification_id, "expired"),
    }


async def test_chat_messages_post_once_and_page_in_order(catalog: Catalog) -> None:
    def message(key: str, text: str, room: str = "room") -> ChatMessageRow:
        return ChatMessageRow(
            dedupe_key=key, room_id=room, actor_type="users", actor_id="alice", message=text, parameters={}, timestamp=1
        )

    started = await catalog.add_chat_message(message("r:recording_started", "recording_started"))
    assert (await catalog.add_chat_message(message("r:recording_started", "x"))).message_id == started.message_id
    stopped = await catalog.add_chat_message(message("r:recording_stopped", "recording_stopped"))
    await catalog.add_chat_message(message("o:recording_started", "recording_started", room="other"))
    assert [m.message for m in await catalog.chat_messages("room")] == ["recording_started", "recording_stopped"]
    assert [m.message_id for m in await catalog.chat_messages("room", after=started.message_id)] == [stopped.message_id]
    assert [m.message_id for m in await catalog.chat_messages("room", limit=1)] == [started.message_id]


# ------------------------------------------------------------------ SQLite writers


async def test_sqlite_writers_of_one_process_never_collide(tmp_path: Any) -> None:
    """With SQLite's busy wait switched off, any two writers meeting in the database fail with "database is
    locked". The catalog queues its writers instead, so 60 concurrent writes all land."""
    from sqlalchemy import event

    catalog = Catalog.from_url(f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}")

    @event.listens_for(catalog.engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.cursor().execute("PRAGMA busy_timeout=0")

    try:
        await create_schema(catalog.engine)
        rows = [await catalog.add_recording(recording(f"room-{i}")) for i in range(20)]
        writes = [catalog.project_recording(r.recording_id, 5, {"status": "active"}) for r in rows]
        writes += [catalog.set_egress_id(r.recording_id, f"EG_{i}") for i, r in enumerate(rows)]
        writes += [
            catalog.add_chat_message(
                ChatMessageRow(
                    room_id=r.room_id,
                    actor_type="guests",
                    actor_id="system",
                    message="recording_started",
                    parameters={},
                    timestamp=1,
                    dedupe_key=f"started-{r.recording_id}",
                )
            )  # fmt: skip
            for r in rows
        ]
        await asyncio.gather(*writes)
        stored = [await catalog.get_recording(r.recording_id) for r in rows]
        assert [(s.status, s.egress_id) for s in stored if s] == [("active", f"EG_{i}") for i in range(20)]
        assert all([await catalog.chat_messages(r.room_id) for r in rows])
    finally:
        await catalog.close()
