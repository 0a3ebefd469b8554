"""`POST /recording/{token}/store`: the recorder's upload, streamed into a staging key of the object store.

Handled at the ASGI level, ahead of Quart: Quart buffers request bodies as fast as they arrive, while
pulling each chunk with `receive()` lets the object store pace the client, so memory stays flat
whatever the file size. The multipart body is parsed incrementally with werkzeug's sans-IO decoder.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from temporalio.service import RPCError
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from callrec.api.ocs import OCS_BASE, encode
from callrec.api.services import Services
from callrec.domain import signing
from callrec.domain.recording import FileStored
from callrec.storage.catalog import RecordingRow
from callrec.storage.objects import ObjectStoreError, PutResult
from callrec.workflows.recording import RecordingWorkflow

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STORE_PATH = re.compile(rf"^{re.escape(OCS_BASE)}/recording/(?P<token>[^/]+)/store$")
EXTENSIONS = {"mp4": "mp4", "ogg": "ogg"}
MAX_FIELD_BYTES = 4096
DECODER_BUFFER_BYTES = 1 << 20
QUEUE_CHUNKS = 16
log = logging.getLogger(__name__)


class UploadRejected(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


async def _respond(send: Send, status: int, data: Any, message: str = "OK") -> None:
    body = encode(data, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
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
            stored = await self._store(match["token"], scope, receive)
        except UploadRejected as exc:
            await _respond(send, exc.status, {"error": exc.error}, "Upload rejected")
            return
        except ObjectStoreError:
            log.exception("object store failed during an upload")
            await _respond(send, 503, {"error": "storage"}, "Object store unavailable")
            return
        except RequestEntityTooLarge:
            await _respond(send, 400, {"error": "size"}, "Upload rejected")
            return
        except Exception:
            log.exception("upload failed")
            await _respond(send, 500, {"error": "system"}, "Internal error")
            return
        if stored is not None:
            await _respond(send, 200, [])

    async def _find_recording(self, room_id: str, recording_id: str | None) -> RecordingRow:
        catalog = self.svc.catalog
        if recording_id is not None:
            row = await catalog.get_recording(recording_id)
            row = row if row is not None and row.room_id == room_id else None
        else:
            row = await catalog.recording_in_progress(room_id)
        if row is None or row.status not in ("active", "ending"):
            raise UploadRejected(404, "recording")
        return row

    async def _store(self, token: str, scope: Scope, receive: Receive) -> FileStored | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        secret = self.svc.settings.require_recording_secret()
        if not signing.verify(
            secret,
            headers.get(signing.RANDOM_HEADER.lower()),
            headers.get(signing.CHECKSUM_HEADER.lower()),
            token.encode(),
        ):
            raise UploadRejected(401, "checksum")
        if await self.svc.catalog.get_room(token) is None:
            raise UploadRejected(404, "room")
        mimetype, options = parse_options_header(headers.get("content-type", ""))
        if mimetype != "multipart/form-data" or not options.get("boundary"):
            raise UploadRejected(400, "invalid_file")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.svc.settings.max_upload_bytes:
            raise UploadRejected(400, "size")

        upload = _MultipartUpload(options["boundary"].encode())
        target: tuple[RecordingRow, str] | None = None
        try:
            async for event in upload.events(receive):
                if isinstance(event, File) and event.name == "file" and upload.task is None:
                    extension = event.filename.rsplit(".", 1)[-1].lower() if "." in event.filename else ""
                    if extension not in EXTENSIONS:
                        raise UploadRejected(400, "file_extension")
                    row = await self._find_recording(token, upload.fields.get("recordingId"))
                    key = f"staging/{row.recording_id}/{uuid.uuid4().hex}.{EXTENSIONS[extension]}"
                    upload.start(self.svc.store.put_stream(key, upload.chunks()))
                    target = (row, key)
            if target is None or upload.task is None:
                raise UploadRejected(400, "invalid_file")
            result = await upload.task
        except BaseException:
            await upload.cancel()
            raise
        row, key = target
        if result.size == 0:
            await self.svc.store.delete(key)
            raise UploadRejected(400, "empty_file")
        file = FileStored(staging_key=key, size=result.size, sha256=result.sha256)
        handle = self.svc.temporal.get_workflow_handle_for(RecordingWorkflow.run, row.recording_id)
        try:
            await handle.signal(RecordingWorkflow.file_stored, file)
        except RPCError as exc:
            await self.svc.store.delete(key)
            raise UploadRejected(404, "recording") from exc
        return file


class _MultipartUpload:
    """Feeds the `file` part of a multipart body into a bounded queue that an object-store upload drains."""

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

    async def events(self, receive: Receive) -> AsyncIterator[File | Field]:
        """Yields each part's header event; data of the file part goes to the queue, field values to `fields`."""
        field: tuple[str, bytearray] | None = None
        in_file = False
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
                    had_upload = self.task is not None
                    yield event
                    in_file = not had_upload and self.task is not None
                    field = None
                elif isinstance(event, Field):
                    field = (event.name, bytearray())
                    in_file = False
                elif isinstance(event, Data):
                    if in_file:
                        if event.data:
                            await self._feed(event.data)
                        if not event.more_data:
                            await self._feed(None)
                            in_file = False
                    elif field is not None:
                        field[1].extend(event.data)
                        if len(field[1]) > MAX_FIELD_BYTES:
                            raise UploadRejected(400, "invalid_file")
                        if not event.more_data:
                            self.fields[field[0]] = field[1].decode("utf-8", "replace")
                            field = None
                event = self.decoder.next_event()
            if not more:
                raise UploadRejected(400, "invalid_file")
