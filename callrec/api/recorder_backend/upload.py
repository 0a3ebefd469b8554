"""`POST /recording/{token}/store`: the recorder's upload, streamed into a staging key of the object store.

Handled at the ASGI level, ahead of Quart: Quart buffers request bodies as fast as they arrive, while
pulling each chunk with `receive()` lets the object store pace the client, so memory stays flat
whatever the file size. The multipart body is parsed as it streams (`multipart.MultipartReader`).

Checks, with Talk's error codes: checksum (401 `{"type": "error", "error": {"code": "invalid_request"}}`; verified
first, so a signed upload is never throttled; bad ones are counted for brute force: 429), a random used before
(401 `replay`), room (404, empty data), `owner` (missing: `size` and a "Failed to upload" notification to the owner
of the room's latest recording; `owner_invalid`, `owner_participant`, `owner_permission`), `empty_file`, and the
file's sniffed type against its name (`file_name`, `file_mimetype`, `file_extension`). Nothing rejected stays in
the object store. A retried upload of a file already stored is answered 200 and not stored twice.

As Talk stores any upload for its owner, an upload that no recording takes (none waiting for a file, or another file
than the one a recording stored) becomes a recording of its own (`RecordingsService.adopt_upload`): validated,
stored and offered to its owner as any other. An upload never replaces a stored file.

Bounds: the body is counted as it streams (chunked ones too) and refused at `CALLREC_MAX_UPLOAD_BYTES`
(`size`); at most `MAX_PARTS` multipart parts, each with at most `multipart.MAX_HEADER_BYTES` of headers,
fields other than `owner` and `recordingId` are skipped unread, and a field over `MAX_FIELD_BYTES` is refused;
a body that stalls `CALLREC_UPLOAD_IDLE_TIMEOUT_S` or lasts `CALLREC_UPLOAD_BODY_TIMEOUT_S` is refused (408
`timeout`); beyond `CALLREC_MAX_CONCURRENT_UPLOADS` signed uploads at once the next gets 503 `busy` before its
body is parsed (it is at most drained, below).

A refusal closes the connection (`Connection: close`). When the rest of the body is at most `DRAIN_BYTES` by its
Content-Length, it is read and dropped first (for at most `DRAIN_S`): a connection closed with unread bytes is
reset, and the reset can take the answer with it (granian also stops reading a body once the answer has begun: 18 of
200 uploads refused `busy` in the lifecycle bench got a reset instead of their 503). A larger or unsized rest is
answered at once, while the client may still be sending, then drained as far as the server lets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.http import parse_options_header

from callrec.api.ocs import OCS_BASE, encode
from callrec.api.recorder_backend.callbacks import remember_random
from callrec.api.recorder_backend.multipart import Event, MultipartError, MultipartReader, PartStart
from callrec.api.recorder_backend.watchdog import ReceiveWatchdog
from callrec.api.services import Services
from callrec.domain import signing
from callrec.domain.ids import new_recording_id
from callrec.domain.notifications import STORE_FAILED
from callrec.domain.recording import FileStored, RecordingKind, RecordingStatus
from callrec.logs import bind_recording
from callrec.logs.http import note_route
from callrec.media.sniff import SNIFF_BYTES, UploadFormatError, check_upload
from callrec.metrics import UPLOAD_BYTES, UPLOAD_SECONDS
from callrec.recordings.errors import NotExpectingFile, RecordingNotFound, RoomAlreadyRecording, ServiceUnavailable
from callrec.storage.objects import ObjectStoreError, PutResult
from callrec.storage.rows import NotificationRow, RecordingRow
from callrec.tracing import name_server_span

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STORE_PATH = re.compile(rf"^{re.escape(OCS_BASE)}/recording/(?P<token>[^/]+)/store$")
STORE_ROUTE = f"{OCS_BASE}/recording/<token>/store"  # as Quart names the route (`callbacks.py` declares it)
UPLOADABLE = {s.value for s in RecordingStatus if s.in_progress and s != RecordingStatus.STARTING}
RETRYABLE = {RecordingStatus.COMPLETE.value, RecordingStatus.LIMIT_REACHED.value}  # a retry of a stored upload
MAX_OWNER_LENGTH = 128
MAX_FIELD_BYTES = 4096
MAX_PARTS = 8  # the protocol has three: owner, recordingId (callrec's recorder), file
FIELDS = ("owner", "recordingId")  # the form fields kept; others are skipped unread
# A refusal reads and drops up to this much more of the body, for at most this long, before the connection closes.
# A client that sends its whole body before it reads (requests, httpx) finds the answer if the rest of its body
# fits; a larger one may see the connection reset (closing with unread bytes resets it).
DRAIN_BYTES = 16 << 20
DRAIN_S = 2.0
BUSY_RETRY_S = 5
# The file's pieces, as the HTTP server hands them over, that may wait for the store. Each piece goes on at once, not
# gathered into larger blocks: every piece an upload holds is memory, and with 50 uploads at once gathering 1 MiB
# blocks made 116 MB of the API's RSS against 54 MB piece by piece (bench/README.md, "Concurrent uploads").
QUEUE_PIECES = 4
log = logging.getLogger(__name__)


class UploadRejected(Exception):
    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}

    @property
    def data(self) -> object:
        """Talk's answer: `{"error": code}`; an authentication failure in the callbacks' shape; an unknown room
        empty."""
        if self.status == 404 and self.error == "room":
            return []
        if self.status in (401, 429):
            message = "The request could not be authenticated." if self.status == 401 else "Too many refused requests."
            code = "invalid_request" if self.error == "checksum" else self.error
            return {"type": "error", "error": {"code": code, "message": message}}
        return {"error": self.error}


class _Body:
    """The request body as it streams in: counts it against the size cap, times out a stalled or slow one,
    and knows whether the client sent all of it (`done`) or went away (`disconnected`)."""

    def __init__(self, receive: Receive, limit: int, idle_s: float, total_s: float, length: int | None) -> None:
        self._receive = receive
        self.length = length  # by its Content-Length; None: chunked
        self.limit = limit
        self.idle_s = idle_s
        self.deadline = time.monotonic() + total_s
        self.received = 0
        self.done = False
        self.disconnected = False
        self.after_answer: list[Awaitable[None]] = []  # what a refusal does once it is answered (notify)
        self._watchdog = ReceiveWatchdog()  # one timer for every receive, not one per piece

    def close(self) -> None:
        self._watchdog.close()

    async def run_after_answer(self) -> None:
        while self.after_answer:
            try:
                await self.after_answer.pop(0)
            except Exception:
                log.exception("after refusing an upload")

    async def next(self, idle_s: float | None = None) -> tuple[bytes, bool]:
        """The next piece of the body and whether more follows; refuses a body over the cap or too slow."""
        if self.done:
            return b"", False
        wait_s = min(self.idle_s if idle_s is None else idle_s, self.deadline - time.monotonic())
        try:
            message = await self._watchdog.wait(self._receive, wait_s)
        except TimeoutError as exc:
            raise UploadRejected(408, "timeout") from exc
        if message["type"] == "http.disconnect":
            self.done = self.disconnected = True
            raise UploadRejected(400, "invalid_file")
        data: bytes = message.get("body", b"")
        self.received += len(data)
        self.done = not message.get("more_body", False)
        if self.received > self.limit:
            raise UploadRejected(400, "size")
        return data, not self.done

    def rest_at_most(self, size: int) -> bool:
        """Whether what is left of the body is known to be at most `size` bytes."""
        return self.length is not None and self.length - self.received <= size

    async def drain(self, max_bytes: int = DRAIN_BYTES, max_s: float = DRAIN_S) -> None:
        """Reads and drops the rest of the body, up to `max_bytes` or `max_s`: a client that sends its whole
        body before it reads the answer (most do) then finds the answer waiting when the connection closes."""
        until = time.monotonic() + max_s
        drained = 0
        self.limit = self.received + max_bytes + 1  # the drain is not refused for size
        with contextlib.suppress(UploadRejected):
            while not self.done and drained < max_bytes and (left := until - time.monotonic()) > 0:
                data, _ = await self.next(idle_s=left)
                drained += len(data)


async def _respond(
    send: Send,
    status: int,
    data: Any,
    message: str = "OK",
    extra: dict[str, str] | None = None,
    body: _Body | None = None,
) -> None:
    """Answers; a refusal (or an answer before the client sent all of its body) closes the connection after
    at most a short drain of the rest of the body, never waiting for all of it."""
    payload = encode(data, status, message)
    drained = False
    if body is not None and not body.done and body.rest_at_most(DRAIN_BYTES):
        await body.drain()  # before the answer: see the module's docstring
        drained = True
    close = status != 200 or (body is not None and not body.done)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": close and body is not None})
    if body is not None:
        await body.run_after_answer()
    if close and body is not None:  # the client has the whole answer now; the connection ends after the drain
        if not body.disconnected and not drained:  # one drain per refusal: at most DRAIN_S
            await body.drain()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _content_length(scope: Scope) -> int | None:
    """The request's Content-Length; None for a chunked body."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class StoreUpload:
    def __init__(self, app: ASGIApp, svc: Services) -> None:
        self.app = app
        self.svc = svc
        self.uploads = 0  # signed uploads being received now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = STORE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        name_server_span("POST", STORE_ROUTE)
        note_route(scope, f"{OCS_BASE}/recording/<token>/store")
        bind_recording(room_id=match["token"])
        settings = self.svc.settings
        body = _Body(
            receive,
            settings.max_upload_bytes,
            settings.upload_idle_timeout_s,
            settings.upload_body_timeout_s,
            _content_length(scope),
        )
        began, answered = time.monotonic(), 500

        async def sending(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
            await send(message)

        try:
            await self._answer(match["token"], scope, body, sending)
        finally:
            body.close()
            outcome = "stored" if answered == 200 else "refused" if answered < 500 else "failed"
            UPLOAD_BYTES.labels(outcome).inc(body.received)
            UPLOAD_SECONDS.labels(outcome).observe(time.monotonic() - began)

    async def _answer(self, token: str, scope: Scope, body: _Body, send: Send) -> None:
        try:
            await self._store(token, scope, body)
        except UploadRejected as exc:
            try:
                await _respond(send, exc.status, exc.data, "Upload rejected", exc.headers, body)
            finally:
                await body.run_after_answer()  # also when the answer could not be sent
            return
        except ObjectStoreError as exc:  # the store is down or refuses: an operator's matter, not a bug of callrec
            log.warning("object store failed during an upload: %s", exc)
            await _respond(send, 503, {"error": "storage"}, "Object store unavailable", body=body)
            return
        except ServiceUnavailable as exc:  # the recorder retries; a 404 would make it give the recording up
            log.warning("upload refused for now: %s", exc)
            retry = {"Retry-After": str(exc.retry_after_s)}
            await _respond(send, 503, {"error": "unavailable"}, "Try again", retry, body)
            return
        except Exception:
            log.exception("upload failed")
            await _respond(send, 500, {"error": "system"}, "Internal error", body=body)
            return
        await _respond(send, 200, [], body=body)

    async def _find_recording(self, room_id: str, recording_id: str | None) -> RecordingRow | None:
        """The recording this upload is for: named by callrec's recorder, else the room's one waiting for its file,
        else its latest: one that gave up waiting for it (failed, upload timeout: its workflow still takes a late
        upload within `CALLREC_LATE_UPLOAD_WINDOW_S`) or stored it (a retried upload). None: no recording takes it
        (it becomes a recording of its own)."""
        try:
            row = await self.svc.recordings.for_upload(room_id, recording_id)
        except RecordingNotFound as exc:
            if recording_id is not None:  # callrec's recorder named one that is gone
                raise UploadRejected(404, "recording") from exc
            return None
        bind_recording(row.recording_id)
        late = row.status == RecordingStatus.FAILED.value and row.error == "upload_timeout"
        if row.status not in UPLOADABLE | RETRYABLE and not late:
            if recording_id is not None:
                raise UploadRejected(404, "recording")
            return None
        return row

    async def _check_owner(self, room_id: str, row: RecordingRow | None, owner: str) -> None:
        """The owner must be who started the recording (or, with no recording, of the room's latest one), or a
        moderator of its call."""
        if not owner or len(owner) > MAX_OWNER_LENGTH or not owner.isprintable():
            raise UploadRejected(400, "owner_invalid")
        row = row or await self._latest(room_id)
        if row is not None and owner == row.owner:
            return
        call = await self.svc.catalog.get_call(room_id)
        participants = list(row.participants or [] if row is not None else []) + list(call.participants if call else [])
        matches = [p for p in participants if owner in (p.get("id"), p.get("name"))]
        if not matches:
            raise UploadRejected(400, "owner_participant")
        if not any(p.get("role") == "moderator" for p in matches):
            raise UploadRejected(400, "owner_permission")

    async def _latest(self, room_id: str) -> RecordingRow | None:
        """The room's latest recording: whose owner Talk remembers for an upload that names no recording."""
        latest = await self.svc.catalog.recordings(room_id=room_id, limit=1)
        return latest[0] if latest else None

    async def _notify_failed_upload(self, room_id: str, row: RecordingRow | None) -> None:
        """Talk's "Failed to upload call recording", to the owner it remembers: the recording's, else the room's
        latest recording's (nobody, with no recording at all)."""
        row = row or await self._latest(room_id)
        if row is None:
            return
        await self.svc.catalog.add_notification(
            NotificationRow(
                room_id=row.room_id,
                recording_id=row.recording_id,
                user=row.owner,
                moderators=False,
                subject=STORE_FAILED,
                message=f"The recording of {row.room_name} could not be uploaded: it was too large or incomplete.",
                timestamp=int(time.time()),
            )
        )

    def _refuse(self, scope: Scope, error: str) -> UploadRejected:
        """A refused signature or random, counted for its address: 429 once the address is blocked."""
        if (wait_s := self.svc.throttle.refused((scope.get("client") or ("unknown",))[0])) is not None:
            return UploadRejected(429, "too_many_requests", {"Retry-After": str(wait_s)})
        return UploadRejected(401, error)

    def _authenticate(self, token: str, scope: Scope, headers: dict[str, str]) -> str:
        """The request's random, once its checksum is right; never throttled when it is."""
        random = headers.get(signing.RANDOM_HEADER.lower())
        given = headers.get(signing.CHECKSUM_HEADER.lower())
        if random is None or not signing.verify(self.svc.settings.require_recording_secret(), random, given,
                                                token.encode()):  # fmt: skip
            raise self._refuse(scope, "checksum")
        return random

    async def _store(self, token: str, scope: Scope, body: _Body) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        random = self._authenticate(token, scope, headers)
        if self.uploads >= self.svc.settings.max_concurrent_uploads:
            raise UploadRejected(503, "busy", {"Retry-After": str(BUSY_RETRY_S)})
        self.uploads += 1
        try:
            if not await remember_random(self.svc, random):
                raise self._refuse(scope, "replay")
            try:
                await self._receive_file(token, headers, body)
            except BaseException as exc:
                if body.disconnected or not isinstance(exc, UploadRejected) or exc.status >= 500:
                    with contextlib.suppress(Exception):  # the client may send it again with the same random
                        await self.svc.catalog.forget_nonce(random)
                raise
        finally:
            self.uploads -= 1

    async def _receive_file(self, token: str, headers: dict[str, str], body: _Body) -> None:
        if await self.svc.catalog.get_room(token) is None:
            raise UploadRejected(404, "room")
        mimetype, options = parse_options_header(headers.get("content-type", ""))
        if mimetype != "multipart/form-data" or not options.get("boundary"):
            raise UploadRejected(400, "invalid_file")

        upload = _MultipartUpload(options["boundary"].encode())
        row: RecordingRow | None = None
        found = False
        owner_checked = False
        staged: tuple[str, str, str] | None = None  # key, extension, mimetype
        adopted_id = new_recording_id(token)  # where a file no recording takes is staged
        try:
            length = headers.get("content-length", "")
            if length.isascii() and length.isdigit() and int(length) > body.limit:
                row = await self._find_recording(token, None)
                raise UploadRejected(400, "size")
            async for head in upload.events(body):
                row, found = await self._find_recording(token, upload.fields.get("recordingId")), True
                if (owner := upload.fields.get("owner")) is not None:
                    await self._check_owner(token, row, owner)
                    owner_checked = True
                if not head.data:
                    raise UploadRejected(400, "empty_file")
                try:
                    mimetype, extension = check_upload(head.filename, head.data)
                except UploadFormatError as exc:
                    raise UploadRejected(400, exc.error) from exc
                key = f"staging/{row.recording_id if row is not None else adopted_id}/{uuid.uuid4().hex}.{extension}"
                staged = (key, extension, mimetype)
                upload.start(self.svc.store.put_stream(key, upload.chunks()))
            if not found or upload.task is None or staged is None:
                raise UploadRejected(400, "invalid_file")
            result = await upload.task
            owner = upload.fields.get("owner")
            if owner is None:
                raise UploadRejected(400, "size")  # Talk's answer when the form lost its fields
            if not owner_checked:
                await self._check_owner(token, row, owner)
            file = FileStored(staging_key=staged[0], size=result.size, sha256=result.sha256, extension=staged[1])
            if row is not None and not await self._hand_over(row, file):
                if upload.fields.get("recordingId") is not None:  # callrec's recorder named this recording
                    raise UploadRejected(400, "recording")  # it has another file already
                row = None
            if row is None:
                kind = RecordingKind.AUDIO if staged[2].startswith("audio/") else RecordingKind.VIDEO
                await self._adopt(token, adopted_id, owner, kind, file)
        except BaseException as exc:
            await upload.cancel()  # nothing stays in the store once the client has its answer
            if staged is not None:
                await self.svc.store.delete(staged[0])
            if isinstance(exc, UploadRejected) and exc.error == "size":
                body.after_answer.append(self._notify_failed_upload(token, row))  # a catalog write: after the answer
            raise

    async def _adopt(self, token: str, recording_id: str, owner: str, kind: RecordingKind, file: FileStored) -> None:
        """The file as a recording of its own, for `owner` (Talk stores any upload it is sent)."""
        room = await self.svc.catalog.get_room(token)
        if room is None:
            raise UploadRejected(404, "room")
        try:
            await self.svc.recordings.adopt_upload(room, recording_id, owner, kind)
        except RoomAlreadyRecording as exc:  # one is starting: it takes no file, and this one cannot begin
            raise UploadRejected(404, "recording") from exc
        log.info("an upload to room %s that no recording took is recording %s", token, recording_id)
        await self.svc.recordings.store_file(recording_id, file)

    async def _hand_over(self, row: RecordingRow, file: FileStored) -> bool:
        """Gives the file to the recording's workflow; False when the recording has another file (this one then
        becomes a recording of its own). An upload never replaces a file: a copy of the file the recording has (a
        recorder retrying an upload whose answer it lost) is dropped with a 200."""
        has = row.sha256  # the stored file's
        if row.status not in RETRYABLE:
            try:
                kept = await self.svc.recordings.store_file(row.recording_id, file)
            except (NotExpectingFile, RecordingNotFound) as exc:
                now = await self.svc.catalog.get_recording(row.recording_id)  # stored meanwhile (a racing retry)?
                if now is None or now.status not in RETRYABLE:
                    raise UploadRejected(404, "recording") from exc
                has = now.sha256
            else:
                if kept.staging_key == file.staging_key:
                    return True
                has = kept.sha256
        if has != file.sha256:
            return False
        await self.svc.store.delete(file.staging_key)
        return True


@dataclass(frozen=True)
class FileHead:
    """The file part's name and first bytes (up to SNIFF_BYTES): what its type is judged by."""

    filename: str
    data: bytes


class _MultipartUpload:
    """Feeds the `file` part of a multipart body into a bounded queue that an object-store upload drains.

    `events()` yields the file part's head once; the caller checks it and calls `start()` with the upload. The
    file's bytes go to the upload in the pieces the HTTP server handed over, uncopied; at most `QUEUE_PIECES` wait
    while the store writes, and beyond that the body is not read (the client waits: TCP's flow control).
    """

    def __init__(self, boundary: bytes) -> None:
        try:
            self.reader = MultipartReader(boundary, max_parts=MAX_PARTS)
        except MultipartError as exc:
            raise UploadRejected(400, "invalid_file") from exc
        self.fields: dict[str, str] = {}
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_PIECES)
        self.task: asyncio.Task[PutResult] | None = None

    def start(self, upload: Awaitable[PutResult]) -> None:
        self.task = asyncio.ensure_future(upload)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk

    async def _put(self, item: bytes | None) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # the upload failed: raise its error
            raise ObjectStoreError("upload stopped early")
        if not self.queue.full():  # the common case, without a task per piece
            self.queue.put_nowait(item)
            return
        put = asyncio.ensure_future(self.queue.put(item))
        await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            self.task.result()  # the upload failed: raise its error
            raise ObjectStoreError("upload stopped early")

    async def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except BaseException:  # noqa: BLE001 - cancelled or failed: either way it cleaned up
                pass

    def _parse(self, data: bytes, more: bool) -> list[Event]:
        """The reader's events for the next piece; a malformed body or too many parts is the client's fault (400)."""
        try:
            events = self.reader.feed(data)
            if not more and not self.reader.done:
                self.reader.close()
        except MultipartError as exc:
            raise UploadRejected(400, "invalid_file") from exc
        return events

    async def events(self, body: _Body) -> AsyncIterator[FileHead]:
        """Reads the body; yields the file part's head once. Later data goes to the queue, the protocol's fields
        to `fields`; other parts are skipped without keeping them."""
        part: Literal["head", "file", "field", "other"] = "other"
        filename = ""
        head = bytearray()
        field: tuple[str, bytearray] | None = None
        seen_file = False
        while not self.reader.done:
            data, more = await body.next()
            for event in self._parse(data, more):
                if isinstance(event, PartStart):
                    if event.filename is not None:
                        part = "head" if event.name == "file" and not seen_file else "other"
                        seen_file = seen_file or part == "head"
                        filename = event.filename
                    else:
                        keep = event.name in FIELDS and event.name not in self.fields
                        part, field = ("field", (event.name, bytearray())) if keep else ("other", None)
                    continue
                if part == "file":
                    if event.data:
                        await self._put(event.data)
                elif part == "head":
                    head.extend(event.data)
                    if len(head) >= SNIFF_BYTES or event.last:
                        yield FileHead(filename, bytes(head))
                        if self.task is None:
                            raise UploadRejected(400, "invalid_file")
                        if head:
                            await self._put(bytes(head))
                        part = "file"
                elif part == "field" and field is not None:
                    field[1].extend(event.data)
                    if len(field[1]) > MAX_FIELD_BYTES:
                        raise UploadRejected(400, "invalid_file")
                    if event.last:
                        self.fields[field[0]] = field[1].decode("utf-8", "replace")
                if part == "file" and event.last:
                    await self._put(None)  # the end
                    part = "other"
