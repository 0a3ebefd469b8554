"""Deleting and downloading recordings, one or many; many are downloaded as one ZIP streamed from the object store.

The ZIP is built by zipstream-ng (STORED, `sized=True`, so its exact length is known before the first byte),
whose generator is synchronous. Each step of the generator runs in a worker thread of a dedicated pool and reads
the next chunk of a recording there with the store's blocking reader (`read_blocking`), so a chunk costs one
hand-off to the event loop. The response pulls one step at a time, so at most one chunk is in flight per
download whatever the total size, and a slow client slows the store reads down with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zipfile import ZIP_STORED

from quart import Blueprint, Response, jsonify, request
from zipstream import ZipStream

from callrec.api import errors, schemas
from callrec.api.auth import INSUFFICIENT, confine, require
from callrec.api.meet.access import authorized_recording, permitted_recording
from callrec.api.meet.media import PLAYABLE, content_type, stored_media
from callrec.api.offload import PRESIGNED_REDIRECT, offloaded
from callrec.api.operations import (
    FILE_HEADERS,
    MEDIA_TYPES,
    RECORDING_IDS,
    RECORDING_SECRET,
    Answer,
    Who,
    declare,
    error,
    header_doc,
)
from callrec.api.services import services
from callrec.api.validation import check_recording_ids
from callrec.domain.tokens import Permission, Principal
from callrec.storage.objects import ObjectNotFound

log = logging.getLogger(__name__)

blueprint = Blueprint("files", __name__)

OTHER_ROOM = "Recording belongs to another room"


def out_of_reach(who: Principal) -> str:
    """Why a bulk operation skips a recording `who` may not reach: a member token's room, or Meet's wording."""
    return OTHER_ROOM if who.kind == "member" else INSUFFICIENT


MAX_RECORDING_IDS = 100  # per bulk delete or ZIP download
# `X-Skipped-Recordings` lists skipped ids (URL-encoded, comma-separated, in request order) until the next one
# would take it past this many bytes; `X-Skipped-Recordings-Count` always says how many were skipped in all.
SKIPPED_HEADER_MAX_BYTES = 3072

# Threads that step ZIP generators: a step blocks on a store read, so they do not take the default executor's
# threads from the stores' own async I/O.
_ZIP_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="zip-stream")


# ------------------------------------------------------------------------- helpers


def requested_ids() -> list[str]:
    """`recordingIds` (comma-separated, the parameter may repeat), without blanks and duplicates, in order; each
    checked and sanitised as Meet does (422 `recordingIds.<index>` when malformed).

    At most `MAX_RECORDING_IDS` distinct ids (422 beyond, before any is looked at)."""
    unique = check_recording_ids(request.args.getlist("recordingIds"))  # Meet's rules and messages
    if len(unique) > MAX_RECORDING_IDS:
        raise errors.invalid_parameter(
            "recordingIds", f"At most {MAX_RECORDING_IDS} recording ids per request ({len(unique)} given)"
        )
    return unique


def skipped_headers(skipped: list[str]) -> dict[str, str]:
    """`X-Skipped-Recordings` (as many URL-encoded ids as fit in `SKIPPED_HEADER_MAX_BYTES`) and
    `X-Skipped-Recordings-Count` (all of them); nothing when none was skipped."""
    if not skipped:
        return {}
    listed: list[str] = []
    size = 0
    for recording_id in skipped:
        encoded = quote(recording_id, safe="")
        size += len(encoded) + (1 if listed else 0)
        if size > SKIPPED_HEADER_MAX_BYTES:
            break
        listed.append(encoded)
    return {"X-Skipped-Recordings": ",".join(listed), "X-Skipped-Recordings-Count": str(len(skipped))}


def _sample(ids: list[str], limit: int = 10) -> str:
    """Ids for a log line: the first `limit`, then how many more."""
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def attachment(filename: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ------------------------------------------------------------------------- delete


@blueprint.delete("/recordings/<recording_id>")
@declare(
    "deleteRecording",
    "Delete a recording",
    tag="Recordings",
    security=Who.EVERYONE,
    responses={
        200: Answer("Deleted", schemas.Message),
        403: error(),
        404: error("No such recording"),
        409: error("The recording is in progress"),
        503: error("The object store is unavailable"),
    },
)
async def delete_recording(recording_id: str) -> Response:
    row = await permitted_recording(recording_id, Permission.DELETE)
    await services().recordings.delete(row)
    return jsonify({"message": f"Recording '{recording_id}' deleted successfully"})


@blueprint.delete("/recordings")
@declare(
    "bulkDeleteRecordings",
    "Delete recordings",
    tag="Recordings",
    security=Who.EVERYONE,
    responses={
        200: Answer("All deleted", schemas.BulkDeleteResult),
        400: Answer("Some could not be deleted (the others were)", schemas.BulkDeleteResult),
        403: error(),
        422: error(f"No recording id given, or more than {MAX_RECORDING_IDS}"),
    },
    parameters=(RECORDING_IDS,),
)
async def bulk_delete_recordings() -> tuple[Response, int]:
    who = require(Permission.DELETE)
    ids = requested_ids()
    reasons = await services().recordings.delete_many(
        ids, refuse=lambda row: None if confine(who, row.room_id, Permission.DELETE) else out_of_reach(who)
    )
    deleted = [i for i, reason in reasons.items() if reason is None]
    failed = [{"recordingId": i, "error": r} for i, r in reasons.items() if r is not None]
    log.info("bulk delete by %s: %d of %d deleted", who.subject, len(deleted), len(ids))
    if not failed:
        return jsonify({"message": "All recordings deleted successfully", "deleted": deleted, "failed": []}), 200
    message = f"{len(failed)} recording(s) could not be deleted"
    return jsonify({"message": message, "deleted": deleted, "failed": failed}), 400


# ------------------------------------------------------------------------- download


@blueprint.get("/recordings/<recording_id>/download")
@declare(
    "downloadRecording",
    "Download a recording",
    tag="Recordings",
    security=Who.EVERYONE_OR_SECRET,
    responses={
        200: Answer(
            "The file, as an attachment",
            binary=MEDIA_TYPES,
            headers={"Content-Disposition": header_doc("`attachment` with the recording's filename.")} | FILE_HEADERS,
        ),
        302: PRESIGNED_REDIRECT,
        400: error("`recordingSecret` is not one of the recording's secrets"),
        403: error(),
        404: error("No such recording, or its media is missing"),
        409: error("The recording is not complete"),
    },
    parameters=(RECORDING_SECRET,),
)
async def download_recording(recording_id: str) -> Response:
    svc = services()
    row = await authorized_recording(recording_id, Permission.DOWNLOAD)
    key, size = await stored_media(row)
    headers = {
        "Content-Type": content_type(key),
        "Content-Disposition": attachment(row.filename),
        "Content-Length": str(size),
        "Cache-Control": "private, no-cache",
    }
    if (handed := await offloaded(key, headers)) is not None:
        return handed
    response = Response(svc.store.read(key), status=200, headers=headers)
    response.timeout = None  # a long download is not a hung handler
    return response


@dataclass(frozen=True)
class ZipEntry:
    recording_id: str
    name: str
    key: str
    size: int


async def zip_entries(ids: list[str], who: Principal) -> list[ZipEntry]:
    """The playable recordings among `ids` that `who` may reach, in order, with their sizes; the rest is skipped."""
    svc = services()
    rows = await svc.catalog.recordings_by_id(ids)

    unavailable: list[str] = []
    missing_media: list[str] = []

    async def entry(recording_id: str) -> ZipEntry | None:
        row = rows.get(recording_id)
        reachable = row is not None and confine(who, row.room_id, Permission.DOWNLOAD)
        if row is None or not reachable or row.status not in PLAYABLE or row.object_key is None:
            unavailable.append(recording_id)
            return None
        try:
            size = (await svc.store.stat(row.object_key)).size
        except ObjectNotFound:
            missing_media.append(recording_id)
            return None
        return ZipEntry(recording_id, row.filename or f"{recording_id}.mp4", row.object_key, size)

    found = await asyncio.gather(*(entry(i) for i in ids))
    if missing_media:  # one line per request, whatever the number of ids
        log.warning("ZIP download: %d recordings have no media in the object store: %s",
                    len(missing_media), _sample(missing_media))  # fmt: skip
    if unavailable:
        log.info("ZIP download: %d of %d recordings not available, skipped", len(unavailable), len(ids))
    entries: list[ZipEntry] = []
    names: set[str] = set()
    for e in found:
        if e is None:
            continue
        name, n = e.name, 1
        while name in names:  # filenames are unique per recording, but a ZIP must not repeat a name
            n += 1
            stem, dot, ext = e.name.rpartition(".")
            name = f"{stem} ({n}).{ext}" if dot else f"{e.name} ({n})"
        names.add(name)
        entries.append(ZipEntry(e.recording_id, name, e.key, e.size))
    return entries


def _next_piece(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)


async def _until_done(step: concurrent.futures.Future[bytes | None]) -> None:
    """Wait for a step's thread to finish (whatever its outcome), even while being cancelled."""
    while not step.done():
        try:
            await asyncio.shield(asyncio.wrap_future(step))
        except asyncio.CancelledError:
            continue
        except Exception:  # noqa: BLE001 - outcome deliberately ignored: the stream is being torn down
            return


async def stream_zip(archive: Any, sources: list[Iterator[bytes]]) -> AsyncIterator[bytes]:
    """The ZIP's bytes, one generator step at a time in a worker thread; cleans up however it ends."""
    pieces: Iterator[bytes] = iter(archive)
    step: concurrent.futures.Future[bytes | None] | None = None
    try:
        while True:
            step = _ZIP_THREADS.submit(_next_piece, pieces)
            piece = await asyncio.wrap_future(step)
            if piece is None:
                return
            yield piece
    except Exception:
        log.exception("streaming a ZIP of recordings failed; the response is cut short")
        raise
    finally:
        # Never touch the generators while a thread runs them: a cancelled await does not stop the thread.
        if step is not None:
            await _until_done(step)
        for generator in (pieces, *sources):
            close = getattr(generator, "close", None)
            if close is not None:
                close()


@blueprint.get("/recordings/download")
@declare(
    "downloadRecordings",
    "Download recordings as a ZIP",
    tag="Recordings",
    security=Who.EVERYONE,
    responses={
        200: Answer(
            "A ZIP (stored, not compressed) of the playable recordings within reach",
            binary=("application/zip",),
            headers={
                "Content-Disposition": header_doc('`attachment; filename="recordings.zip"`.'),
                "X-Skipped-Recordings": header_doc(
                    "Comma-separated, URL-encoded ids left out of the ZIP, in request order; cut after the last "
                    f"whole id that fits in {SKIPPED_HEADER_MAX_BYTES} bytes (compare with the count).",
                    required=False,
                ),
                "X-Skipped-Recordings-Count": header_doc(
                    "How many ids were left out in all (more than `X-Skipped-Recordings` lists when it was cut).",
                    required=False,
                ),
            }
            | FILE_HEADERS,
        ),
        400: error("None of the recordings is available"),
        403: error(),
        422: error(f"No recording id given, or more than {MAX_RECORDING_IDS}"),
    },
    parameters=(RECORDING_IDS,),
)
async def download_recordings() -> Response:
    """A ZIP of the requested recordings that are playable and within reach; `X-Skipped-Recordings` lists the rest."""
    who = require(Permission.DOWNLOAD)
    ids = requested_ids()
    entries = await zip_entries(ids, who)
    if not entries:
        raise errors.ApiError(400, "Recording Error", "None of the provided recordings are available for ZIP download")
    store = services().store
    sources = [store.read_blocking(e.key) for e in entries]
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for e, source in zip(entries, sources, strict=True):
        archive.add(source, e.name, size=e.size)
    headers = {
        "Content-Type": "application/zip",
        "Content-Disposition": 'attachment; filename="recordings.zip"',
        "Content-Length": str(len(archive)),
        "Cache-Control": "private, no-cache",
    }
    included = {e.recording_id for e in entries}
    headers |= skipped_headers([i for i in ids if i not in included])
    response = Response(stream_zip(archive, sources), status=200, headers=headers)
    response.timeout = None  # a long download is not a hung handler
    return response
