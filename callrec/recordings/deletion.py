"""Deleting a finished recording: its objects first, then its row, so a failure half way can be retried; and why one
was not deleted, as OpenVidu Meet words it."""

from __future__ import annotations

import logging

from callrec.recordings import errors
from callrec.storage.catalog import Catalog
from callrec.storage.objects import ObjectStore, ObjectStoreError
from callrec.storage.rows import IN_PROGRESS, RecordingRow

log = logging.getLogger(__name__)
# Why a recording was not deleted, as bulk answers name it.
NOT_FOUND = "Recording not found"
IN_PROGRESS_REASON = "Recording is in progress"
STORE_UNAVAILABLE = "The object store is not available; try again"


async def delete_recording(catalog: Catalog, store: ObjectStore, row: RecordingRow) -> str | None:
    if row.status in IN_PROGRESS:
        return IN_PROGRESS_REASON
    try:
        await _delete_objects(store, row)
    except ObjectStoreError as exc:
        log.warning("deleting the objects of recording %s failed: %s", row.recording_id, exc)
        return STORE_UNAVAILABLE
    if await catalog.delete_recording(row.recording_id):
        log.info("recording %s deleted", row.recording_id)
        return None
    # Not deleted: gone meanwhile (a concurrent delete) or, in theory, in progress again.
    return NOT_FOUND if await catalog.get_recording(row.recording_id) is None else IN_PROGRESS_REASON


async def _delete_objects(store: ObjectStore, row: RecordingRow) -> None:
    """The final object and anything an upload or a finalize left behind for this recording."""
    keys = set(await store.list_keys(f"staging/{row.recording_id}/"))
    keys.update(await store.list_keys(f"recordings/{row.room_id}/{row.recording_id}."))
    if row.object_key is not None:
        keys.add(row.object_key)
    for key in sorted(keys):
        await store.delete(key)


def meet_reason(recording_id: str, row: RecordingRow | None, reason: str | None) -> str | None:
    """A bulk delete's reason as OpenVidu Meet words it where Meet has the case (not found, not stopped yet)."""
    if reason == NOT_FOUND:
        return str(errors.RecordingNotFound(recording_id))
    if reason == IN_PROGRESS_REASON:
        return str(errors.RecordingInProgress(recording_id, row.status if row is not None else "in progress"))
    return reason
