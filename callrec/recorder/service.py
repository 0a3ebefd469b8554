"""The built-in recorder: the recording-server side of the Talk protocol, rendering with PyAV.

It behaves as the Talk recording server (`nextcloud-talk-recording`: `Server.py`, `Service.py`,
`BackendNotifier.py`) does. `POST /api/v1/room/{token}` with `{"type": "start" | "stop"}`, signed over
random + body (403 when the checksum is wrong, 400 when the body is not usable, 404 to a stop of a
recording it does not know, 200 `{}` otherwise, also to a repeated start and to a stop of a recording it
is already stopping). The start's `owner` is the `owner` of the upload, its `actor` is echoed in
`started`; a stop's `actor`, when given, is echoed in `stopped`.

After a start it calls back `started` (or `failed`) to the backend named in `Talk-Recording-Backend`;
after a stop it finishes the file, calls back `stopped`, and uploads the file to the backend's `/store`
endpoint (multipart `owner` and `file`, checksum over random + token). callrec's own additions: the start
carries `recordingId`, `layout`, `encoding` and `participants`; callbacks and the upload carry
`recordingId`, and `failed` a `reason`. Unlike the Talk recording server it also accepts a start without
`owner` / `actor` or `Talk-Recording-Backend` (falling back to placeholders and its configured backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError
from quart import Quart, Response, jsonify, request

from callrec.domain import signing
from callrec.domain.layout import Encoding, EncodingPreset, Layout, render_spec
from callrec.domain.participants import Participant
from callrec.media.render import LiveRecording

log = logging.getLogger(__name__)
OCS_BASE = "/ocs/v2.php/apps/spreed/api/v1"
ATTEMPTS = 4
# Used when a start carries no owner / actor (the Talk recording server requires both).
PLACEHOLDER_OWNER = "callrec-recorder"
PLACEHOLDER_ACTOR = {"type": "users", "id": PLACEHOLDER_OWNER}
# The Talk recording server sends these on every callback and upload.
OCS_HEADERS = {"OCS-APIRequest": "true"}


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
    recordingId: str
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
    live: LiveRecording
    owner: str = PLACEHOLDER_OWNER
    actor: dict[str, str] = field(default_factory=lambda: dict(PLACEHOLDER_ACTOR))
    stopped_by: dict[str, str] | None = None
    opened: asyncio.Task[bool] | None = field(default=None)


class Recorder:
    def __init__(
        self,
        secret: str,
        default_backend: str,
        workdir: Path,
        http: httpx.AsyncClient,
        progress_every_s: float = 15.0,
    ) -> None:
        self.secret = secret
        self.progress_every_s = progress_every_s
        self.default_backend = default_backend.rstrip("/")
        self.workdir = workdir
        self.http = http
        self.sessions: dict[str, Session] = {}
        self.stopping: dict[str, Session] = {}  # stopped, still finishing or uploading
        self.tasks: set[asyncio.Task[None]] = set()
        workdir.mkdir(parents=True, exist_ok=True)

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self, url: str, **kwargs: Any) -> httpx.Response | None:
        """POST with retries and backoff; None when every attempt failed."""
        for attempt in range(ATTEMPTS):
            try:
                response = await self.http.post(url, **kwargs)
                if response.status_code < 500:
                    return response
                log.warning("POST %s answered %s", url, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("POST %s failed: %r", url, exc)
            await asyncio.sleep(0.5 * 2**attempt)
        return None

    async def callback(self, session: Session, kind: str, extra: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"token": session.room_id, "recordingId": session.recording_id}
        if kind == "started":
            payload |= {"status": session.status, "actor": session.actor}
        elif kind == "stopped" and session.stopped_by is not None:
            payload["actor"] = session.stopped_by
        payload |= extra or {}
        body = json.dumps({"type": kind, kind: payload}).encode()
        headers = {"Content-Type": "application/json"} | OCS_HEADERS | signing.signed_headers(self.secret, body)
        response = await self._post(f"{session.backend}{OCS_BASE}/recording/backend", content=body, headers=headers)
        if response is None or response.status_code != 200:
            log.error("callback %s for %s not accepted", kind, session.recording_id)

    async def start(self, room_id: str, backend: str, body: StartBody) -> None:
        if body.recordingId in self.sessions:
            return  # a retried start: already recording
        spec = render_spec(body.encoding)
        audio_only = body.status == 2
        path = self.workdir / f"{body.recordingId}.{'ogg' if audio_only else 'mp4'}"
        participants = [(p.id or p.name, p.name) for p in body.participants]
        live = LiveRecording(path, body.layout, participants, spec, audio_only=audio_only)
        session = Session(body.recordingId, room_id, backend, body.status, path, live)
        if body.owner:
            session.owner = body.owner
        if body.actor is not None:
            session.actor = body.actor.wire()
        self.sessions[body.recordingId] = session
        session.opened = asyncio.ensure_future(self._open(session))

    async def _open(self, session: Session) -> bool:
        try:
            await asyncio.to_thread(session.live.start)
        except Exception as exc:  # noqa: BLE001 - reported to the backend as `failed`
            log.exception("could not start %s", session.recording_id)
            self.sessions.pop(session.recording_id, None)
            self.spawn(self.callback(session, "failed", {"reason": f"The recorder could not start encoding: {exc}"}))
            return False
        self.spawn(self._watch(session))
        self.spawn(self.callback(session, "started"))
        return True

    async def _watch(self, session: Session) -> None:
        """Reports `progress` while the session records, and `failed` if the encoder dies."""
        started = last_report = time.monotonic()
        while self.sessions.get(session.recording_id) is session:
            if session.live.error is not None:
                log.error("encoding of %s died: %r", session.recording_id, session.live.error)
                self.sessions.pop(session.recording_id, None)
                await self.callback(session, "failed", {"reason": f"Encoding failed: {session.live.error}"})
                return
            if time.monotonic() - last_report >= self.progress_every_s:
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
            self.stopping.pop(session.recording_id, None)

    async def _finish_and_upload(self, session: Session) -> None:
        if session.opened is not None and not await session.opened:
            return  # encoding never began; `failed` was reported
        try:
            await asyncio.to_thread(session.live.stop)
        except Exception as exc:  # noqa: BLE001
            log.exception("could not finish %s", session.recording_id)
            await self.callback(session, "failed", {"reason": f"The recorder could not finish the file: {exc}"})
            return
        await self.callback(session, "stopped")
        try:
            if not await self.upload(session):
                await self.callback(session, "failed", {"reason": "The recorder could not upload the file."})
        finally:
            with contextlib.suppress(FileNotFoundError):
                session.path.unlink()

    async def upload(self, session: Session) -> bool:
        mimetype = "audio/ogg" if session.path.suffix == ".ogg" else "video/mp4"
        for attempt in range(ATTEMPTS):
            headers = OCS_HEADERS | signing.signed_headers(self.secret, session.room_id.encode())
            try:
                with session.path.open("rb") as f:
                    response = await self.http.post(
                        f"{session.backend}{OCS_BASE}/recording/{session.room_id}/store",
                        headers=headers,
                        data={"owner": session.owner, "recordingId": session.recording_id},
                        files={"file": (session.path.name, f, mimetype)},
                        timeout=httpx.Timeout(60, read=600),
                    )
                if response.status_code == 200:
                    return True
                log.warning("upload of %s answered %s: %s", session.recording_id, response.status_code, response.text)
                if response.status_code < 500:
                    return False
            except httpx.HTTPError as exc:
                log.warning("upload of %s failed: %r", session.recording_id, exc)
            await asyncio.sleep(0.5 * 2**attempt)
        return False

    async def shutdown(self) -> None:
        for session in list(self.sessions.values()):
            await self.stop(session)
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=60)


def create_recorder_app(recorder: Recorder) -> Quart:
    app = Quart("callrec-recorder")

    @app.post("/api/v1/room/<token>")
    async def room(token: str) -> tuple[Response, int]:
        raw: bytes = await request.body
        if not signing.verify(
            recorder.secret,
            request.headers.get(signing.RANDOM_HEADER),
            request.headers.get(signing.CHECKSUM_HEADER),
            raw,
        ):
            return jsonify({"error": "checksum"}), 403
        backend = (request.headers.get(signing.BACKEND_HEADER) or recorder.default_backend).rstrip("/")
        try:
            message = json.loads(raw)
            kind = message["type"]
            payload = message[kind]
        except (ValueError, KeyError, TypeError):
            return jsonify({"error": "body"}), 400
        if kind == "start":
            try:
                await recorder.start(token, backend, StartBody.model_validate(payload))
            except ValidationError as exc:
                return jsonify({"error": "body", "details": exc.errors(include_url=False)}), 400
            return jsonify({}), 200
        if kind == "stop":
            # Talk sends `"stop": []` (PHP's empty array) when nobody in particular stopped the recording.
            fields = payload if isinstance(payload, dict) else {}
            recording_id = fields.get("recordingId")
            session = recorder.find(token, recording_id)
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
        return jsonify({"status": "up", "recordings": len(recorder.sessions)})

    @app.after_serving
    async def finish_recordings() -> None:
        await recorder.shutdown()

    return app
