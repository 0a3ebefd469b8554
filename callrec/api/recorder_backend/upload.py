"""`POST /recording/{token}/store`: the recorder's upload, streamed into a staging key of the object store.

Handled at the ASGI level, ahead of Quart: Quart buffers request bodies as fast as they arrive, while
pulling each chunk with `receive()` lets the object store pace the client, so memory stays flat
whatever the file size. The multipart body is parsed incrementally with werkzeug's sans-IO decoder.

Checks, with Talk's error codes: checksum (401, counted for brute force: 429), room (404), the recording
(404), `owner` (missing: `size` and a "failed to upload" notification; `owner_invalid`,
`owner_participant`, `owner_permission`), `empty_file`, and the file's sniffed type against its name
(`file_name`, `file_mimetype`, `file_extension`). Nothing rejected stays in the object store. A retried
upload of a file already stored is answered 200 and not stored twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from callrec.api.ocs import OCS_BASE, encode
from callrec.api.services import Services
from callrec.domain import signing
from callrec.domain.notifications import STORE_FAILED
from callrec.domain.recording import FileStored, RecordingStatus
from callrec.media.sniff import SNIFF_BYTES, UploadFormatError, check_upload
from callrec.recordings.errors import NotExpectingFile, RecordingNotFound, ServiceUnavailable
from callrec.storage.catalog import NotificationRow, RecordingRow
from callrec.storage.objects import ObjectStoreError, PutResult

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STORE_PATH = re.compile(rf"^{re.escape(OCS_BASE)}/recording/(?P<token>[^/]+)/store$")
UPLOADABLE = {s.value for s in RecordingStatus if s.in_progress and s != RecordingStatus.STARTING}
RETRYABLE = {RecordingStatus.COMPLETE.value, RecordingStatus.LIMIT_REACHED.value}  # a retry of a stored upload
MAX_OWNER_LENGTH = 128
MAX_FIELD_BYTES = 4096
DECODER_BUFFER_BYTES = 1 << 20
QUEUE_CHUNKS = 16
log = logging.getLogger(__name__)


class UploadRejected(Exception):
    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.headers = headers or {}


async def _respond(
    send: Send, status: int, data: Any, message: str = "OK", extra: dict[str, str] | None = None
) -> None:
    body = encode(data, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class StoreUpload:
    def __init__(self, app: ASGIApp, svc: Services) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = STORE_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            await self._store(match["token"], scope, receive)
        except UploadRejected as exc:
            await _respond(send, exc.status, {"error": exc.error}, "Upload rejected", exc.headers)
            return
        except RequestEntityTooLarge:
            await _respond(send, 400, {"error": "size"}, "Upload rejected")
            return
        except ObjectStoreError:
            log.exception("object store failed during an upload")
            await _respond(send, 503, {"error": "storage"}, "Object store unavailable")
            return
        except ServiceUnavailable as exc:  # the recorder retries; a 404 would make it give the recording up
            log.warning("upload refused for now: %s", exc)
            await _respond(send, 503, {"error": "unavailable"}, "Try again", {"Retry-After": str(exc.retry_after_s)})
            return
        except Exception:
            log.exception("upload failed")
            await _respond(send, 500, {"error": "system"}, "Internal error")
            return
        await _respond(send, 200, [])

    async def _find_recording(self, room_id: str, recording_id: str | None) -> RecordingRow:
        """The recording this upload is for: named by callrec's recorder, else the room's current one."""
        try:
            row = await self.svc.recordings.for_callback(room_id, recording_id, latest=True)
        except RecordingNotFound as exc:
            raise UploadRejected(404, "recording") from exc
        if row.status not in UPLOADABLE | RETRYABLE:
            raise UploadRejected(404, "recording")
        return row

    async def _check_owner(self, row: RecordingRow, owner: str) -> None:
        """The owner must be who started the recording, or a moderator of its call."""
        if not owner or len(owner) > MAX_OWNER_LENGTH or not owner.isprintable():
            raise UploadRejected(400, "owner_invalid")
        if owner == row.owner:
            return
        call = await self.svc.catalog.get_call(row.room_id)
        participants = list(row.participants or []) + list(call.participants if call else [])
        matches = [p for p in participants if owner in (p.get("id"), p.get("name"))]
        if not matches:
            raise UploadRejected(400, "owner_participant")
        if not any(p.get("role") == "moderator" for p in matches):
            raise UploadRejected(400, "owner_permission")

    async def _notify_failed_upload(self, row: RecordingRow) -> None:
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

    async def _authenticate(self, token: str, scope: Scope, headers: dict[str, str]) -> None:
        address = (scope.get("client") or ("unknown",))[0]
        throttle = self.svc.throttle
        if (wait_s := throttle.retry_after(address)) is not None:
            raise UploadRejected(429, "bruteforce", {"Retry-After": str(wait_s)})
        if not signing.verify(
            self.svc.settings.require_recording_secret(),
            headers.get(signing.RANDOM_HEADER.lower()),
            headers.get(signing.CHECKSUM_HEADER.lower()),
            token.encode(),
        ):
            throttle.failed(address)
            raise UploadRejected(401, "checksum")

    async def _store(self, token: str, scope: Scope, receive: Receive) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        await self._authenticate(token, scope, headers)
        if await self.svc.catalog.get_room(token) is None:
            raise UploadRejected(404, "room")
        mimetype, options = parse_options_header(headers.get("content-type", ""))
        if mimetype != "multipart/form-data" or not options.get("boundary"):
            raise UploadRejected(400, "invalid_file")

        upload = _MultipartUpload(options["boundary"].encode())
        row: RecordingRow | None = None
        owner_checked = False
        staged: tuple[str, str] | None = None  # key, extension
        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.svc.settings.max_upload_bytes:
                row = await self._find_recording(token, None)
                raise UploadRejected(400, "size")
            async for head in upload.events(receive):
                row = await self._find_recording(token, upload.fields.get("recordingId"))
                if (owner := upload.fields.get("owner")) is not None:
                    await self._check_owner(row, owner)
                    owner_checked = True
                if not head.data:
                    raise UploadRejected(400, "empty_file")
                try:
                    _, extension = check_upload(head.filename, head.data)
                except UploadFormatError as exc:
                    raise UploadRejected(400, exc.error) from exc
                key = f"staging/{row.recording_id}/{uuid.uuid4().hex}.{extension}"
                staged = (key, extension)
                upload.start(self.svc.store.put_stream(key, upload.chunks()))
            if row is None or upload.task is None or staged is None:
                raise UploadRejected(400, "invalid_file")
            result = await upload.task
            if not owner_checked:
                owner = upload.fields.get("owner")
                if owner is None:
                    raise UploadRejected(400, "size")  # Talk's answer when the form lost its fields
                await self._check_owner(row, owner)
            await self._hand_over(row, FileStored(staging_key=staged[0], size=result.size, sha256=result.sha256,
                                                  extension=staged[1]))  # fmt: skip
        except BaseException as exc:
            await upload.cancel()
            if staged is not None:
                await self.svc.store.delete(staged[0])
            if isinstance(exc, UploadRejected) and exc.error == "size" and row is not None:
                await self._notify_failed_upload(row)
            raise

    async def _hand_over(self, row: RecordingRow, file: FileStored) -> None:
        """Gives the file to the recording's workflow; a copy of a file it already has is dropped."""
        try:
            kept = await self.svc.recordings.store_file(row.recording_id, file)
        except (NotExpectingFile, RecordingNotFound) as exc:
            raise UploadRejected(404, "recording") from exc
        if kept.staging_key != file.staging_key:
            await self.svc.store.delete(file.staging_key)
            if kept.sha256 != file.sha256:
                raise UploadRejected(409, "recording")  # the recording already has another file


@dataclass(frozen=True)
class FileHead:
    """The file part's name and first bytes (up to SNIFF_BYTES): what its type is judged by."""

    filename: str
    data: bytes


class _MultipartUpload:
    """Feeds the `file` part of a multipart body into a bounded queue that an object-store upload drains.

    `events()` yields the file part's head once; the caller checks it and calls `start()` with the upload.
    """

    def __init__(self, boundary: bytes) -> None:
        self.decoder = MultipartDecoder(boundary, max_form_memory_size=DECODER_BUFFER_BYTES)
        self.fields: dict[str, str] = {}
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        self.task: asyncio.Task[PutResult] | None = None

    def start(self, upload: Awaitable[PutResult]) -> None:
        self.task = asyncio.ensure_future(upload)

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self.queue.get()) is not None:
            yield chunk

    async def _feed(self, chunk: bytes | None) -> None:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # the upload failed: raise its error
            raise ObjectStoreError("upload stopped early")
        if not self.queue.full():  # the common case, without a task per chunk
            self.queue.put_nowait(chunk)
            return
        put = asyncio.ensure_future(self.queue.put(chunk))
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

    async def events(self, receive: Receive) -> AsyncIterator[FileHead]:
        """Reads the body; yields the file part's head once. Later data goes to the queue, fields to `fields`."""
        part: Literal["head", "file", "field", "other"] = "other"
        filename = ""
        head = bytearray()
        field: tuple[str, bytearray] | None = None
        seen_file = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise UploadRejected(400, "invalid_file")
            more = message.get("more_body", False)
            self.decoder.receive_data(message.get("body", b""))
            if not more:
                self.decoder.receive_data(None)
            event = self.decoder.next_event()
            while not isinstance(event, NeedData):
                if isinstance(event, Epilogue):
                    return
                if isinstance(event, File):
                    part = "head" if event.name == "file" and not seen_file else "other"
                    seen_file = seen_file or part == "head"
                    filename = event.filename
                elif isinstance(event, Field):
                    part, field = "field", (event.name, bytearray())
                elif isinstance(event, Data):
                    if part == "head":
                        head.extend(event.data)
                        if len(head) >= SNIFF_BYTES or not event.more_data:
                            yield FileHead(filename, bytes(head))
                            if self.task is None:
                                raise UploadRejected(400, "invalid_file")
                            if head:
                                await self._feed(bytes(head))
                            part = "file"
                    elif part == "file" and event.data:
                        await self._feed(event.data)
                    elif part == "field" and field is not None:
                        field[1].extend(event.data)
                        if len(field[1]) > MAX_FIELD_BYTES:
                            raise UploadRejected(400, "invalid_file")
                        if not event.more_data:
                            self.fields[field[0]] = field[1].decode("utf-8", "replace")
                    if part == "file" and not event.more_data:
                        await self._feed(None)
                        part = "other"
                event = self.decoder.next_event()
            if not more:
                raise UploadRejected(400, "invalid_file")
