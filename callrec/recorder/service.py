"""The built-in recorder: the recording-server side of the Talk protocol, rendering with PyAV.

It behaves as the Talk recording server (`nextcloud-talk-recording`: `Server.py`, `Service.py`,
`BackendNotifier.py`) does, so it can stand in for one. `GET /api/v1/welcome` answers `{"version"}`.
`POST /api/v1/room/{token}` with `{"type": "start" | "stop"}`, checked in the Talk recording server's order: the
backend (403), the body's size (400 without a length or above MAX_MESSAGE_SIZE, its default `maxmessagesize`),
the checksum over random + body, compared exactly (403), then the body (400: no `type`, an unknown one, a start
without `owner` and `actor: {type, id}`, a stop without `stop`); 404 to a stop of a recording it does not know,
200 `{}` otherwise, also to a start for a token it is recording already (one recording per token: nothing
happens) and to a stop of a recording it is already stopping. The start's `owner` is the `owner` of the upload,
its `actor` is echoed in `started`; a stop's `actor`, when given, is echoed in `stopped`.

After a start it calls back `started` to the backend named in `Talk-Recording-Backend` (3 tries; when `started`
cannot be delivered it sends `failed` and drops the recording); after a stop it finishes the file, calls back
`stopped`, and uploads the file to the backend's `/store` endpoint as `Recording YYYY-MM-DD HH-MM-SS.mp4` (`.ogg`
for audio; local time of the recording's start), multipart `owner` and `file`, checksum over random + token, 3
tries. A start as Talk sends it (no `recordingId`) gets exactly Talk's callbacks. callrec's own additions, only when
the start carries a `recordingId` (with `layout`, `encoding`, `participants`): callbacks and the upload carry
`recordingId`, `failed` a `reason`, and it reports `progress`. It also accepts a request without
`Talk-Recording-Backend` (its first configured backend is meant).

Hardening (`protocol.py`): `Talk-Recording-Backend` only picks one of the configured back ends (403 `backend`
otherwise, as the Talk recording server answers a backend it has no secret for); a repeated
`Talk-Recording-Random` is refused (403 `replayed`) and every request it sends carries a fresh one; recording ids
and room tokens must be plain identifiers (400). Its files are 0600 in a 0700 directory, and at start-up it
removes whatever a previous process left there. When the backend answers 404 or 410 to `started` or `progress`,
the recording is an orphan: it stops it and discards the file. A retried start of a recording it is recording
sends `started` again (the Talk recording server stays silent), so a caller that retried learns it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from quart import Quart, Response, jsonify, request

from callrec.domain import signing
from callrec.domain.ids import is_plain_id
from callrec.domain.layout import Encoding, EncodingPreset, Layout, render_spec
from callrec.domain.participants import Participant
from callrec.domain.pool import PartResult
from callrec.logs import bind_recording
from callrec.logs.http import log_requests, routine
from callrec.media.live import RoomRecording
from callrec.media.stage import Stages
from callrec.recorder.protocol import Backends, Refused, ReplayGuard
from callrec.recorder.shipping import SegmentShipper, Shipped
from callrec.recorder.whip import Whip, add_whip_routes
from callrec.tracing.web import instrument_app

log = logging.getLogger(__name__)
OCS_BASE = "/ocs/v2.php/apps/spreed/api/v1"
ATTEMPTS = 3  # the Talk recording server tries every callback and upload three times
MAX_MESSAGE_SIZE = 1024  # the Talk recording server's default `maxmessagesize`
UPLOAD_NAME = "Recording %Y-%m-%d %H-%M-%S"  # the Talk recording server's file name, in its local time
# Used when a pool part carries no owner / actor (an HTTP start must carry both, as the Talk recording server's).
PLACEHOLDER_OWNER = "callrec-recorder"
PLACEHOLDER_ACTOR = {"type": "users", "id": PLACEHOLDER_OWNER}
# The Talk recording server sends these on every callback and upload.
OCS_HEADERS = {"OCS-APIRequest": "true"}
# What the backend answers to a callback of a recording it no longer has: the recording is an orphan.
GONE = (404, 410)


class Actor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    id: str

    def wire(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


class StartBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: int = 1
    owner: str | None = None
    actor: Actor | None = None
    recordingId: str | None = None  # absent in Talk's start: one is made up, and callbacks carry Talk's fields only
    layout: Layout = Layout.GRID
    encoding: Encoding = EncodingPreset.H264_720P_30
    participants: list[Participant] = []


@dataclass
class Session:
    recording_id: str
    room_id: str
    backend: str
    status: int
    path: Path
    live: RoomRecording
    owner: str = PLACEHOLDER_OWNER
    actor: dict[str, str] = field(default_factory=lambda: dict(PLACEHOLDER_ACTOR))
    stopped_by: dict[str, str] | None = None
    opened: asyncio.Task[bool] | None = field(default=None)
    part: Part | None = None  # a part of a pool recording: shipped as it records, no upload at the end
    plain: bool = False  # started as Talk starts (no recordingId): callbacks and the upload carry only Talk's fields
    started_at: datetime = field(default_factory=datetime.now)  # local time, as the upload's name says it

    @property
    def upload_name(self) -> str:
        return self.started_at.strftime(UPLOAD_NAME) + self.path.suffix


def private_file(path: Path) -> None:
    """Creates `path` 0600 (the encoder then opens it for writing, which keeps the mode of an existing file)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600))
    path.chmod(0o600)


@dataclass
class Part:
    """A pool recording's part on this recorder: its file goes to the object store in segments while it records
    (`SegmentShipper`), and `result` resolves once the last one is stored (or with the reason it could not)."""

    number: int
    shipper: SegmentShipper
    manifest_key: str
    media_before_s: float = 0.0  # what earlier parts of the recording stored (for progress reports)
    bytes_before: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # the file is closed: ship the rest
    shipping: asyncio.Task[Shipped] | None = None
    result: asyncio.Future[PartResult] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, error: str | None, media_s: float = 0.0) -> None:
        if self.result.done():
            return
        if error is not None:
            self.result.set_exception(PartFailed(error))
        else:
            shipped = self.shipper.shipped
            self.result.set_result(PartResult(segments=shipped.segments, bytes=shipped.bytes, media_s=media_s))


class PartFailed(Exception):
    """The part could not be recorded or stored; the message says why."""


class Recorder:
    def __init__(
        self,
        secret: str,
        backends: Sequence[str],
        workdir: Path,
        http: httpx.AsyncClient,
        progress_every_s: float = 15.0,
        replay_window_s: float = 7 * 24 * 3600.0,
        replay_max_entries: int = 100_000,
        name: str = "recorder",
    ) -> None:
        """`backends`: where it may call back and upload (the first when a start names none); `workdir`: its
        own directory (one recorder per directory: what is in it at start-up is removed)."""
        self.secret = secret
        self.name = name
        self.progress_every_s = progress_every_s
        self.backends = Backends(backends)
        self.replays = ReplayGuard(replay_window_s, replay_max_entries)
        self.workdir = workdir
        self.http = http
        self.sessions: dict[str, Session] = {}
        self.stopping: dict[str, Session] = {}  # stopped, still finishing or uploading (or being discarded)
        self.tasks: set[asyncio.Task[None]] = set()
        self.stages = Stages()  # the rooms' live media, fed by WHIP publishers
        workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        workdir.chmod(0o700)
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """A new process knows no recording: whatever is in its directory is a partial file of a lost one."""
        for entry in sorted(self.workdir.iterdir()):
            log.warning("removing %s: left by an earlier recorder process, no recording of this one", entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, url: str, body: bytes) -> tuple[httpx.Response | None, bool]:
        """POST a signed JSON body with retries and backoff, each attempt with a fresh random. The answer (None
        when every attempt failed) and whether an earlier attempt may have arrived (it failed without one)."""
        unanswered = False
        for attempt in range(ATTEMPTS):
            headers = {"Content-Type": "application/json"} | OCS_HEADERS | signing.signed_headers(self.secret, body)
            try:
                response = await self.http.post(url, content=body, headers=headers)
                if response.status_code < 500:
                    return response, unanswered
                log.warning("POST %s answered %s", url, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("POST %s failed: %r", url, exc)
                unanswered = unanswered or not isinstance(exc, httpx.ConnectError)
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(0.5 * 2**attempt)
        return None, unanswered

    async def callback(
        self, session: Session, kind: str, extra: dict[str, Any] | None = None, *, first: bool = True
    ) -> None:
        """Reports to the backend. A 404 or 410 to `progress`, or to the first `started` (not a retry of one the
        backend may have taken already: it refuses a second), means the backend no longer has the recording."""
        if session.plain and kind == "progress":
            return  # not part of Talk's protocol
        payload: dict[str, Any] = {"token": session.room_id}
        if not session.plain:
            payload["recordingId"] = session.recording_id
        if kind == "started":
            payload |= {"status": session.status, "actor": session.actor}
        elif kind == "stopped" and session.stopped_by is not None:
            payload["actor"] = session.stopped_by
        if not session.plain:
            payload |= extra or {}
        body = json.dumps({"type": kind, kind: payload}).encode()
        response, unanswered = await self._post(f"{session.backend}{OCS_BASE}/recording/backend", body)
        why = "no answer" if response is None else f"answered {response.status_code}"
        if response is None or response.status_code != 200:
            if session.part is None:
                log.error("callback %s for %s not accepted (%s)", kind, session.recording_id, why)
            else:  # e.g. the `started` of a part after an operator's retry, whose workflow made it active already
                log.warning("callback %s for %s part %s %s; its workflow decides what follows", kind,
                            session.recording_id, session.part.number, why)  # fmt: skip
        if session.part is not None or (response is not None and response.status_code == 200):
            return  # a pool recording's part ends when its workflow says (its activity), not by a callback's answer
        if kind == "started" and first and (response is None or not unanswered):
            # as the Talk recording server: a recording whose `started` cannot be delivered is dropped, with `failed`
            if self.discard(session, f"`started` could not be delivered ({why})"):
                await self.callback(session, "failed", {"reason": f"`started` could not be delivered ({why})"})
        elif kind == "progress" and response is not None and response.status_code in GONE:
            self.discard(session, f"the backend answered {response.status_code} to {kind}")

    def discard(self, session: Session, why: str) -> bool:
        """Stops a recording the backend does not have (an orphan) and deletes its file; False when it was stopping
        or gone already."""
        if self.sessions.get(session.recording_id) is not session:
            return False
        log.warning("discarding recording %s of room %s: %s", session.recording_id, session.room_id, why)
        self.sessions.pop(session.recording_id)
        self.stopping[session.recording_id] = session  # a stop meanwhile is answered as a retried stop
        self.spawn(self._discard(session))
        return True

    async def _discard(self, session: Session) -> None:
        try:
            if session.opened is None or await session.opened:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(session.live.stop)
            if session.part is not None:
                session.part.settle("the back end no longer has this recording")
        finally:
            with contextlib.suppress(FileNotFoundError):
                session.path.unlink()
            self.stopping.pop(session.recording_id, None)

    async def start(self, room_id: str, backend: str, body: StartBody) -> None:
        """Starts recording; `Refused` for a recording id that is no plain identifier or is in use. One recording
        per back end and token: a start for a token it records already changes nothing (a retry of the same
        recording id is told `started` again)."""
        plain = body.recordingId is None
        recording_id = f"talk-{secrets.token_hex(8)}" if body.recordingId is None else body.recordingId
        if not is_plain_id(recording_id):
            raise Refused(400, "recordingId", "recordingId must be 1 to 128 letters, digits, '_' or '-'")
        if (current := self.sessions.get(recording_id)) is not None:
            if current.room_id != room_id:
                raise Refused(409, "recording", f"recording {recording_id} is being recorded in another room")
            log.info("start of %s again: sending started again", recording_id)
            self.spawn(self._started_again(current))
            return
        if recording_id in self.stopping:
            raise Refused(409, "recording", f"recording {recording_id} is stopping; it cannot start again")
        if any(s.room_id == room_id and s.backend == backend and s.part is None for s in self.sessions.values()):
            log.warning("trying to start recording room %s again: it is being recorded", room_id)
            return
        path = self.workdir / f"{recording_id}.{'ogg' if body.status == 2 else 'mp4'}"
        self._begin(room_id, backend, body.model_copy(update={"recordingId": recording_id}), path, plain=plain)

    def _begin(
        self, room_id: str, backend: str, body: StartBody, path: Path, part: Part | None = None, *, plain: bool = False
    ) -> Session:
        """Records the room's stage into `path` (fragmented for a pool recording's part) from now on."""
        audio_only = body.status == 2
        participants = [(p.id or p.name, p.name) for p in body.participants]
        stage = self.stages.get(room_id)
        spec = render_spec(body.encoding)
        fragmented = part is not None
        live = RoomRecording(path, body.layout, spec, stage, participants, audio_only=audio_only, fragmented=fragmented)
        assert body.recordingId is not None  # made up by `start` when the request carried none
        session = Session(body.recordingId, room_id, backend, body.status, path, live, part=part, plain=plain)
        if body.owner:
            session.owner = body.owner
        if body.actor is not None:
            session.actor = body.actor.wire()
        self.sessions[body.recordingId] = session
        bind_recording(session.recording_id, room_id)  # on every line of the session's tasks started from here
        session.opened = asyncio.ensure_future(self._open(session))
        return session

    async def _started_again(self, session: Session) -> None:
        if session.opened is not None and await session.opened and self.sessions.get(session.recording_id) is session:
            await self.callback(session, "started", first=False)

    async def _open(self, session: Session) -> bool:
        try:
            await asyncio.to_thread(private_file, session.path)
            await asyncio.to_thread(session.live.start)
        except Exception as exc:  # noqa: BLE001 - reported to the backend as `failed`
            log.exception("could not start %s", session.recording_id)
            self.sessions.pop(session.recording_id, None)
            with contextlib.suppress(FileNotFoundError):
                session.path.unlink()
            reason = f"The recorder could not start encoding: {exc}"
            if session.part is not None:
                session.part.settle(reason)
            else:
                self.spawn(self.callback(session, "failed", {"reason": reason}))
            return False
        if session.part is not None:
            await self._begin_shipping(session, session.part)
        self.spawn(self._watch(session))
        if session.part is None or session.part.number == 0:  # a takeover goes on with a recording started before
            self.spawn(self.callback(session, "started"))
        return True

    async def _watch(self, session: Session) -> None:
        """Reports `progress` while the session records, and `failed` if the encoder dies."""
        started = last_report = time.monotonic()
        reported_segments = 0
        while self.sessions.get(session.recording_id) is session:
            if session.live.error is not None:
                log.error("encoding of %s died: %r", session.recording_id, session.live.error)
                self.sessions.pop(session.recording_id, None)
                reason = f"Encoding failed: {session.live.error}"
                if session.part is not None:  # what was shipped stays; the workflow goes on elsewhere
                    session.part.closed.set()
                    session.part.settle(reason)
                    return
                with contextlib.suppress(FileNotFoundError):
                    session.path.unlink()
                await self.callback(session, "failed", {"reason": reason})
                return
            if session.part is not None:
                shipped = session.part.shipper.shipped
                if shipped.segments > reported_segments:  # a pool recording reports each segment stored
                    reported_segments = shipped.segments
                    part = session.part  # the whole recording's so far: earlier parts, and this one
                    progress = {"duration": part.media_before_s + time.monotonic() - session.live.origin,
                                "bytes": part.bytes_before + shipped.bytes, "segments": shipped.segments,
                                "part": part.number}  # fmt: skip
                    self.spawn(self.callback(session, "progress", progress))
            elif time.monotonic() - last_report >= self.progress_every_s:
                last_report = time.monotonic()
                size = session.path.stat().st_size if session.path.exists() else 0
                self.spawn(self.callback(session, "progress", {"duration": last_report - started, "bytes": size}))
            await asyncio.sleep(min(1.0, self.progress_every_s))

    def find(self, room_id: str, recording_id: object, *, stopping: bool = False) -> Session | None:
        sessions = self.stopping if stopping else self.sessions
        if isinstance(recording_id, str):
            found = sessions.get(recording_id)
            return found if found is not None and found.room_id == room_id else None
        return next((s for s in sessions.values() if s.room_id == room_id), None)

    async def stop(self, session: Session, actor: dict[str, str] | None = None) -> None:
        self.sessions.pop(session.recording_id, None)
        session.stopped_by = actor
        self.stopping[session.recording_id] = session
        self.spawn(self._finish(session))

    async def _finish(self, session: Session) -> None:
        try:
            await self._finish_and_upload(session)
        finally:
            with contextlib.suppress(FileNotFoundError):
                session.path.unlink()
            self.stopping.pop(session.recording_id, None)

    async def _finish_and_upload(self, session: Session) -> None:
        if session.opened is not None and not await session.opened:
            return  # encoding never began; `failed` was reported
        if session.part is not None:
            await self._finish_part(session, session.part)
            return
        try:
            await asyncio.to_thread(session.live.stop)
        except Exception as exc:  # noqa: BLE001
            log.exception("could not finish %s", session.recording_id)
            await self.callback(session, "failed", {"reason": f"The recorder could not finish the file: {exc}"})
            return
        # repeatedFrames: video frames repeated or skipped because compositing fell behind (for benchmarks)
        await self.callback(session, "stopped", {"repeatedFrames": session.live.repeated})
        if not await self.upload(session):
            await self.callback(session, "failed", {"reason": "The recorder could not upload the file."})

    def part_path(self, recording_id: str, part: int, *, audio_only: bool) -> Path:
        return self.workdir / f"{recording_id}-{part}.{'ogg' if audio_only else 'mp4'}"

    async def start_part(self, room_id: str, backend: str, body: StartBody, part: Part) -> Session:
        """Starts recording one part of a pool recording (fragmented, shipped as it records); `Refused` as `start`.

        A part of the same recording still here belongs to a run of its workflow that is over (an operator reset it,
        say): it is finished first (what it recorded is shipped), then the new part starts."""
        if body.recordingId is None or not is_plain_id(body.recordingId):
            raise Refused(400, "recordingId", "recordingId must be 1 to 128 letters, digits, '_' or '-'")
        if (old := self.sessions.get(body.recordingId)) is not None:
            if old.part is None:
                raise Refused(409, "recording", f"recording {body.recordingId} is being recorded here already")
            log.warning("recording %s: finishing its part of an earlier run first", body.recordingId)
            await self.stop(old)
        if (stopping := self.stopping.get(body.recordingId)) is not None and stopping.part is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(stopping.part.result)
            while body.recordingId in self.stopping:
                await asyncio.sleep(0.05)
        if body.recordingId in self.sessions or body.recordingId in self.stopping:
            raise Refused(409, "recording", f"recording {body.recordingId} is being recorded here already")
        path = self.part_path(body.recordingId, part.number, audio_only=body.status == 2)
        return self._begin(room_id, backend, body, path, part)

    async def _begin_shipping(self, session: Session, part: Part) -> None:
        """Writes the part's manifest (when its media time 0 was, on the wall clock), then ships as it records."""
        origin_ms = round((time.time() - (time.monotonic() - session.live.origin)) * 1000)
        manifest = json.dumps({"origin_ms": origin_ms, "recorder": self.name, "part": part.number}).encode()

        async def one() -> AsyncIterator[bytes]:
            yield manifest

        try:
            await part.shipper.store.put_stream(part.manifest_key, one())
        except Exception:  # noqa: BLE001 - the segments still join; the gap is then unknown
            log.exception("could not store the manifest of %s part %d", session.recording_id, part.number)
        part.shipping = asyncio.ensure_future(part.shipper.run(part.closed))

    async def _finish_part(self, session: Session, part: Part) -> None:
        media_s, error = 0.0, None
        try:
            media_s = await asyncio.to_thread(session.live.stop)
        except Exception as exc:  # noqa: BLE001 - what was shipped stays
            log.exception("could not finish %s", session.recording_id)
            error = f"The recorder could not finish the file: {exc}"
        part.closed.set()
        if part.shipping is not None:
            try:
                await part.shipping
            except Exception as exc:  # noqa: BLE001
                log.exception("could not store the last segments of %s", session.recording_id)
                error = error or f"The recorder could not store the last segments: {exc}"
        part.settle(error, media_s)

    async def upload(self, session: Session) -> bool:
        mimetype = "audio/ogg" if session.path.suffix == ".ogg" else "video/mp4"
        for attempt in range(ATTEMPTS):
            headers = OCS_HEADERS | signing.signed_headers(self.secret, session.room_id.encode())
            try:
                fields = {"owner": session.owner} | ({} if session.plain else {"recordingId": session.recording_id})
                with session.path.open("rb") as f:
                    response = await self.http.post(
                        f"{session.backend}{OCS_BASE}/recording/{session.room_id}/store",
                        headers=headers,
                        data=fields,
                        files={"file": (session.upload_name, f, mimetype)},
                        timeout=httpx.Timeout(60, read=600),
                    )
                if response.status_code == 200:
                    return True
                log.warning("upload of %s answered %s: %s", session.recording_id, response.status_code, response.text)
                if response.status_code < 500:
                    return False
            except httpx.HTTPError as exc:
                log.warning("upload of %s failed: %r", session.recording_id, exc)
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(0.5 * 2**attempt)
        return False

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            await self.stop(session)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=60)


def create_recorder_app(recorder: Recorder, whip: Whip | None = None) -> Quart:
    """The recorder's HTTP app; with `whip`, also its WHIP resource (`callrec/recorder/whip.py`)."""
    app = Quart("callrec-recorder")
    if whip is not None:
        add_whip_routes(app, whip)  # first: its sessions end before the recordings finish

    @app.get("/api/v1/welcome")
    async def welcome() -> Response:
        try:
            return jsonify({"version": version("callrec")})
        except PackageNotFoundError:
            return jsonify({"version": "0"})

    @app.post("/api/v1/room/<token>")
    async def room(token: str) -> tuple[Response, int]:
        try:
            return await handle(token)
        except Refused as refused:
            log.warning("refused a request for room %r: %s", token[:200], refused.message)
            return jsonify(refused.body()), refused.status

    async def handle(token: str) -> tuple[Response, int]:
        """In the Talk recording server's order: back end, headers, size, checksum, then the body."""
        headers = request.headers
        backend = recorder.backends.pick(headers.get(signing.BACKEND_HEADER))
        random, given = headers.get(signing.RANDOM_HEADER), headers.get(signing.CHECKSUM_HEADER)
        if not random or not given:
            raise Refused(403, "checksum", "Talk-Recording-Random and Talk-Recording-Checksum are required")
        if not request.content_length or request.content_length > MAX_MESSAGE_SIZE:
            raise Refused(400, "size", f"the body must have a Content-Length of 1 to {MAX_MESSAGE_SIZE} bytes")
        raw: bytes = await request.body
        if len(raw) != request.content_length or not signing.verify(recorder.secret, random, given, raw, exact=True):
            raise Refused(403, "checksum", "Talk-Recording-Checksum does not match")
        if not recorder.replays.first_use(random):
            raise Refused(403, "replayed", "this Talk-Recording-Random was used before: sign each request anew")
        if not is_plain_id(token):
            raise Refused(400, "token", "the room token must be 1 to 128 letters, digits, '_' or '-'")
        try:
            message = json.loads(raw)
            kind = message["type"]
            payload = message[kind]
        except (ValueError, KeyError, TypeError, RecursionError):
            return jsonify({"error": "body"}), 400
        if kind == "start":
            actor = payload.get("actor") if isinstance(payload, dict) else None
            if not isinstance(actor, dict) or "owner" not in payload or "type" not in actor or "id" not in actor:
                return jsonify({"error": "body", "message": "a start needs `owner` and `actor: {type, id}`"}), 400
            try:
                await recorder.start(token, backend, StartBody.model_validate(payload))
            except ValidationError as exc:
                return jsonify({"error": "body", "details": exc.errors(include_url=False)}), 400
            return jsonify({}), 200
        if kind == "stop":
            # Talk sends `"stop": []` (PHP's empty array) when nobody in particular stopped the recording.
            fields = payload if isinstance(payload, dict) else {}
            recording_id = fields.get("recordingId")
            if recording_id is not None and not is_plain_id(recording_id):
                raise Refused(400, "recordingId", "recordingId must be 1 to 128 letters, digits, '_' or '-'")
            session = recorder.find(token, recording_id)
            bind_recording(session.recording_id if session else recording_id)
            if session is None:
                if recorder.find(token, recording_id, stopping=True) is not None:
                    return jsonify({}), 200  # stopped already: a retried stop
                return jsonify({"error": "recording"}), 404
            try:
                actor = Actor.model_validate(fields["actor"]).wire() if "actor" in fields else None
            except ValidationError:
                actor = None  # as the Talk recording server: an incomplete actor is no actor
            await recorder.stop(session, actor)
            return jsonify({}), 200
        return jsonify({"error": "type"}), 400

    @app.get("/health")
    async def health() -> Response:
        routine()
        return jsonify({"status": "up", "recordings": len(recorder.sessions)})

    @app.after_serving
    async def finish_recordings() -> None:
        await recorder.shutdown()

    instrument_app(app)
    log_requests(app)
    return app
