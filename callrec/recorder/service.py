"""The built-in recorder: the recording-server side of the Talk protocol, rendering with PyAV.

`POST /api/v1/room/{token}` with `{"type": "start" | "stop"}`, signed over random + body. After a start
it calls back `started` (or `failed`) to the backend named in `Talk-Recording-Backend`; after a stop it
finishes the file, calls back `stopped`, and uploads the file to the backend's `/store` endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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


class StartBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: int = 1
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
    opened: asyncio.Task[bool] | None = field(default=None)


class Recorder:
    def __init__(self, secret: str, default_backend: str, workdir: Path, http: httpx.AsyncClient) -> None:
        self.secret = secret
        self.default_backend = default_backend.rstrip("/")
        self.workdir = workdir
        self.http = http
        self.sessions: dict[str, Session] = {}
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
            payload |= {"status": session.status, "actor": {"type": "users", "id": "callrec-recorder"}}
        payload |= extra or {}
        body = json.dumps({"type": kind, kind: payload}).encode()
        headers = signing.signed_headers(self.secret, body) | {"Content-Type": "application/json"}
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
        """Reports `failed` if the encoder dies while the session is still recording."""
        while self.sessions.get(session.recording_id) is session:
            if session.live.error is not None:
                log.error("encoding of %s died: %r", session.recording_id, session.live.error)
                self.sessions.pop(session.recording_id, None)
                await self.callback(session, "failed", {"reason": f"Encoding failed: {session.live.error}"})
                return
            await asyncio.sleep(1)

    def find(self, room_id: str, recording_id: object) -> Session | None:
        if isinstance(recording_id, str):
            return self.sessions.get(recording_id)
        return next((s for s in self.sessions.values() if s.room_id == room_id), None)

    async def stop(self, session: Session) -> None:
        self.sessions.pop(session.recording_id, None)
        self.spawn(self._finish(session))

    async def _finish(self, session: Session) -> None:
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
            headers = signing.signed_headers(self.secret, session.room_id.encode())
            try:
                with session.path.open("rb") as f:
                    response = await self.http.post(
                        f"{session.backend}{OCS_BASE}/recording/{session.room_id}/store",
                        headers=headers,
                        data={"owner": "callrec-recorder", "recordingId": session.recording_id},
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
            session = recorder.find(token, payload.get("recordingId") if isinstance(payload, dict) else None)
            if session is None:
                return jsonify({"error": "recording"}), 404
            await recorder.stop(session)
            return jsonify({}), 200
        return jsonify({"error": "type"}), 400

    @app.get("/health")
    async def health() -> Response:
        return jsonify({"status": "up", "recordings": len(recorder.sessions)})

    @app.after_serving
    async def finish_recordings() -> None:
        await recorder.shutdown()

    return app
