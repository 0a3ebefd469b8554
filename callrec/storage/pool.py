"""The recorder pool in the catalog: registrations, and admission by slots.

A recorder registers every few seconds (`RecorderReport`, through the API); one not heard from within
`LIVE_WITHIN_S` is offline and gets nothing new. A recording holds a slot (its cost) on one recorder from
admission until its workflow releases it; a recorder's load is the sum of its slots, so admission is decided
here, in one transaction, and holds across API processes (PostgreSQL locks the live recorders' rows; SQLite has
one writer at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from callrec.domain.pool import LIVE_WITHIN_S, Assignment, AssignRequest, RecorderReport, RecorderState
from callrec.storage.catalog import Catalog
from callrec.storage.rows import IN_PROGRESS, RecorderRow, RecordingRow, SlotRow

# A recorder not heard from for this long is forgotten (its row removed at the next registration of any recorder).
FORGET_AFTER_MS = 24 * 3600 * 1000
EPSILON = 1e-9


@dataclass(frozen=True)
class RecorderView:
    recorder_id: str
    url: str
    task_queue: str
    capacity: float
    load: float
    slots: int
    state: RecorderState
    recordings: int
    rooms: list[str]
    seen_at: int
    registered_at: int

    @property
    def free(self) -> float:
        return self.capacity - self.load


def _state(row: RecorderRow, now_ms: int) -> RecorderState:
    if row.seen_at < now_ms - LIVE_WITHIN_S * 1000:
        return RecorderState.OFFLINE
    return RecorderState(row.state)


class RecorderPool:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def register(self, report: RecorderReport, now_ms: int) -> None:
        async with self.catalog.writing() as session:
            row = await session.get(RecorderRow, report.id, with_for_update=True)
            if row is None:
                row = RecorderRow(recorder_id=report.id, registered_at=now_ms)
                session.add(row)
            row.url, row.task_queue, row.capacity = report.url, report.taskQueue, report.capacity
            row.state, row.recordings, row.rooms, row.seen_at = (
                report.state.value,
                report.recordings,
                report.rooms,
                now_ms,
            )
            await session.execute(delete(RecorderRow).where(RecorderRow.seen_at < now_ms - FORGET_AFTER_MS))

    async def recorders(self, now_ms: int) -> list[RecorderView]:
        async with self.catalog.sessions() as session:
            rows = (await session.scalars(select(RecorderRow).order_by(RecorderRow.recorder_id))).all()
            loads = await self._loads(session)
        return [self._view(row, loads, now_ms) for row in rows]

    @staticmethod
    async def _loads(session: object) -> dict[str, tuple[float, int]]:
        query = select(SlotRow.recorder_id, func.sum(SlotRow.cost), func.count()).group_by(SlotRow.recorder_id)
        result = await session.execute(query)  # type: ignore[attr-defined]
        return {recorder: (float(load), int(count)) for recorder, load, count in result.all()}

    @staticmethod
    def _view(row: RecorderRow, loads: dict[str, tuple[float, int]], now_ms: int) -> RecorderView:
        load, count = loads.get(row.recorder_id, (0.0, 0))
        return RecorderView(
            recorder_id=row.recorder_id,
            url=row.url,
            task_queue=row.task_queue,
            capacity=row.capacity,
            load=round(load, 3),
            slots=count,
            state=_state(row, now_ms),
            recordings=row.recordings,
            rooms=list(row.rooms),
            seen_at=row.seen_at,
            registered_at=row.registered_at,
        )

    async def assign(self, request: AssignRequest, now_ms: int) -> Assignment | None:
        """Reserves `request.cost` on a live, active recorder with room for it, and returns it; None: none has.

        The recorder already holding the room's WebRTC publishers is the only choice while it is active (the media
        is there); else the least loaded (by share of capacity). Asking again for a recording that holds a slot
        returns that slot (a retried activity), unless its recorder is excluded: then the slot moves.
        """
        async with self.catalog.writing() as session:
            live = (
                await session.scalars(
                    select(RecorderRow)
                    .where(RecorderRow.seen_at >= now_ms - LIVE_WITHIN_S * 1000)
                    .order_by(RecorderRow.recorder_id)
                    .with_for_update()
                )
            ).all()
            slot = await session.get(SlotRow, request.recording_id, with_for_update=True)
            if slot is not None and slot.recorder_id not in request.exclude:
                held = next((r for r in live if r.recorder_id == slot.recorder_id), None)
                if held is not None:
                    return Assignment(recorder_id=held.recorder_id, task_queue=held.task_queue)
            loads = await self._loads(session)
            if slot is not None:  # its own cost does not count against the recorder it leaves
                load, count = loads.get(slot.recorder_id, (0.0, 0))
                loads[slot.recorder_id] = (load - slot.cost, count - 1)
            views = [self._view(row, loads, now_ms) for row in live]
            active = [v for v in views if v.state == RecorderState.ACTIVE and v.recorder_id not in request.exclude]
            holders = [v for v in active if request.room_id in v.rooms]
            candidates = [v for v in holders or active if v.free + EPSILON >= request.cost]
            if not candidates:
                return None
            chosen = min(candidates, key=lambda v: (v.load / v.capacity, v.recorder_id))
            if slot is None:
                session.add(
                    SlotRow(
                        recording_id=request.recording_id,
                        recorder_id=chosen.recorder_id,
                        room_id=request.room_id,
                        cost=request.cost,
                        created_at=now_ms,
                    )
                )
            else:
                slot.recorder_id, slot.cost = chosen.recorder_id, request.cost
            return Assignment(recorder_id=chosen.recorder_id, task_queue=chosen.task_queue)

    async def release(self, recording_id: str) -> bool:
        async with self.catalog.writing() as session:
            result = await session.execute(delete(SlotRow).where(SlotRow.recording_id == recording_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release_stale(self, before_ms: int) -> list[str]:
        """Releases the slots, older than `before_ms`, of recordings that are not in progress (a workflow that
        ended without releasing its slot: terminated, say); returns their recording ids."""
        in_progress = select(RecordingRow.recording_id).where(RecordingRow.status.in_(IN_PROGRESS))
        async with self.catalog.writing() as session:
            stale = (
                await session.scalars(
                    select(SlotRow.recording_id).where(
                        SlotRow.created_at < before_ms, SlotRow.recording_id.not_in(in_progress)
                    )
                )
            ).all()
            if stale:
                await session.execute(delete(SlotRow).where(SlotRow.recording_id.in_(stale)))
        return list(stale)

    async def for_publisher(self, room_id: str, now_ms: int) -> RecorderView | None:
        """Where a WebRTC publisher of the room goes: the recorder recording the room, else the one holding the
        room's other publishers, else the least loaded active one; None when no recorder is live."""
        views = [v for v in await self.recorders(now_ms) if v.state != RecorderState.OFFLINE]
        async with self.catalog.sessions() as session:
            recording_on: Sequence[str] = (
                await session.scalars(select(SlotRow.recorder_id).where(SlotRow.room_id == room_id))
            ).all()
        for preferred in (
            [v for v in views if v.recorder_id in recording_on],
            [v for v in views if room_id in v.rooms],
        ):
            if preferred:
                return preferred[0]
        active = [v for v in views if v.state == RecorderState.ACTIVE]
        return min(active, key=lambda v: (v.load / v.capacity, v.recorder_id)) if active else None
