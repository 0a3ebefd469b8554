"""WHIP ingest (RFC 9725) into the built-in recorder: publishers' camera and microphone become a room's feeds.

`POST /whip/<room_id>` takes an SDP offer (`application/sdp`, at most 64 KiB) with `Authorization: Bearer <publish
token>` and answers 201 with the SDP answer (non-trickle: ICE gathering is complete, the candidates are in it),
`Location: /whip/<room_id>/<session_id>` and a `Link: <url>; rel="ice-server"` per configured ICE server.
`DELETE` on the Location (the publisher's own token, or a moderator's of that room) ends the session. Refusals
are JSON `{"error", "message"}`: 415 `content-type`, 413 `size`, 401/403 `token`, 404 `room`, 400 `sdp`,
406 `codec` (video VP8/H.264, audio Opus), 409 `publishers` (more than the room's cap), 403 `backend`,
503 `stopping`. PATCH (trickle ICE, ICE restart) is 405; OPTIONS is 204 with `Accept-Post: application/sdp`.

Each session is an aiortc peer connection with recvonly transceivers. Its tracks are read continuously (aiortc
queues decoded frames without bound) and every frame goes into the room's `Feed` with its capture time on the
local clock (`rtpclock`). The session is dropped when ICE/DTLS has not connected within the connect timeout,
when its media stops for the media timeout, when it fails, is deleted, is replaced by a newer session of the same
participant, or the recorder shuts down. From its first media until then the publisher is present in the call: the
backend is told `joined` and `left` (type `publisher`, signed as every other recorder callback), in order per
participant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import av
import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc import sdp as aiosdp
from aiortc.exceptions import OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpSrPacket
from quart import Quart, Response, jsonify, request

from callrec.domain import signing
from callrec.domain.ids import is_plain_id
from callrec.domain.publish import IceServer, Publisher, PublishTokenError, bearer, ice_server_links, verify
from callrec.media.stage import MAX_HEIGHT, MAX_WIDTH, Feed, Stages
from callrec.recorder.protocol import Backends, Refused
from callrec.recorder.rtpclock import PublisherClock, TrackClock

if TYPE_CHECKING:
    from callrec.domain.settings import Settings

log = logging.getLogger(__name__)
MAX_SDP_BYTES = 64 * 1024
DRAIN_BYTES = 1024 * 1024
CALLBACK_PATH = "/ocs/v2.php/apps/spreed/api/v1/recording/backend"
OCS_HEADERS = {"OCS-APIRequest": "true"}
SUPPORTED = {"audio": ("audio/opus",), "video": ("video/vp8", "video/h264")}
SUPPORTED_TEXT = "video VP8 or H.264, audio Opus"
SENDING = (None, "sendrecv", "sendonly")
ALLOW = "POST, DELETE, OPTIONS"
# Encoded frames waiting for aiortc's decoder thread, decoded frames waiting for us: above these the publisher
# sends more than this recorder can take, and it is dropped rather than growing without bound.
# A publisher this far behind (frames waiting to be decoded, or decoded and not yet read) sends more than this
# recorder can take: it is dropped, so that memory stays bounded (a decoded 1080p frame is 3 MB).
MAX_DECODER_BACKLOG = 90
MAX_TRACK_BACKLOG = 30
PRESENCE_REFRESH_S = 15.0  # `joined` is repeated this often while a publisher publishes (a presence lease)
GONE = (404, 410)  # the API's answer to `joined` for a room deleted, closed, or with the token revoked
SHUTDOWN_WAIT_S = 15.0


class Host(Protocol):
    """What WHIP needs of the recorder (`callrec.recorder.service.Recorder`)."""

    backends: Backends
    stages: Stages

    async def _post(self, url: str, body: bytes) -> tuple[httpx.Response | None, bool]: ...


@dataclass(frozen=True)
class WhipConfig:
    secret: str  # publish-token secret
    max_publishers: int = 16
    ice_servers: tuple[str | IceServer, ...] = ()
    connect_timeout_s: float = 15.0
    media_timeout_s: float = 10.0

    @property
    def presence_refresh_s(self) -> float:
        """How often `joined` is repeated: as often as a quiet publisher is dropped, at most PRESENCE_REFRESH_S."""
        return min(PRESENCE_REFRESH_S, self.media_timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings) -> WhipConfig:
        return cls(
            settings.require_publish_secret(),
            settings.max_publishers_per_room,
            tuple(settings.whip_ice_servers),
            settings.whip_connect_timeout_s,
            settings.whip_media_timeout_s,
        )


@dataclass(eq=False)
class PublisherSession:
    id: str
    room_id: str
    publisher: Publisher
    backend: str
    pc: RTCPeerConnection
    feed: Feed
    clock: PublisherClock = field(default_factory=PublisherClock)
    created_s: float = field(default_factory=time.monotonic)
    connected_s: float | None = None
    last_media_s: float | None = None
    frames: int = 0
    joined: bool = False
    ended: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def participant_id(self) -> str:
        return self.publisher.participant_id


def check_offer(text: str) -> list[str]:
    """The kinds of the offer's audio/video m-lines, in order; `Refused` 400 or 406 for an offer it cannot take."""
    try:
        description = aiosdp.SessionDescription.parse(text)
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises whatever the text makes it raise
        raise Refused(400, "sdp", f"the body is not a usable SDP offer ({type(exc).__name__})") from None
    kinds = [m.kind for m in description.media if m.kind in SUPPORTED]
    if not kinds:
        raise Refused(400, "sdp", "the offer has no audio or video m-line")
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise Refused(400, "sdp", "one audio and one video m-line per publisher, at most")
    if not any(m.direction in SENDING for m in description.media if m.kind in SUPPORTED):
        raise Refused(400, "sdp", "the offer sends no audio or video (every m-line is recvonly or inactive)")
    for media in description.media:
        if media.kind in SUPPORTED:
            offered = {c.mimeType.lower() for c in media.rtp.codecs}
            if not offered.intersection(SUPPORTED[media.kind]):
                names = ", ".join(sorted(offered)) or "none"
                raise Refused(406, "codec", f"no supported {media.kind} codec offered ({names}): {SUPPORTED_TEXT}")
    return kinds


def preferred_codecs(kind: str) -> list[Any]:
    wanted = (*SUPPORTED[kind], "video/rtx")
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    return [c for c in capabilities.codecs if c.mimeType.lower() in wanted] if capabilities is not None else []


def _private(obj: object, name: str) -> Any:
    """An aiortc internal; None when this aiortc has no such thing (the caller then does without)."""
    return getattr(obj, name, None)


def rtp_origin(receiver: RTCRtpReceiver) -> int | None:
    origin = _private(_private(receiver, "_RTCRtpReceiver__timestamp_mapper"), "_origin")
    return origin if isinstance(origin, int) else None


def watch_sender_reports(receiver: RTCRtpReceiver, clock: TrackClock) -> None:
    """Hands the RTCP Sender Reports aiortc routes to `receiver` to `clock` as well."""
    original = receiver._handle_rtcp_packet

    async def handle(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            clock.sender_report(packet.sender_info.ntp_timestamp, packet.sender_info.rtp_timestamp)
        await original(packet)

    receiver._handle_rtcp_packet = handle  # type: ignore[method-assign]


def needs_conversion(frame: object) -> bool:
    """A video frame the feed will scale down or convert (more pixels than 1280x720, or not yuv420p)."""
    if not isinstance(frame, av.VideoFrame):
        return False
    return frame.width * frame.height > MAX_WIDTH * MAX_HEIGHT or frame.format.name != "yuv420p"


def drain(receiver: RTCRtpReceiver, track: MediaStreamTrack | None) -> None:
    """Drops the frames still waiting for the decoder and for us: closing the connection otherwise has aiortc
    decode every one of them first, which holds the event loop and memory for seconds after a flood."""
    for pending in (_private(receiver, "_RTCRtpReceiver__decoder_queue"), _private(track, "_queue")):
        if isinstance(pending, queue.Queue | asyncio.Queue):
            with contextlib.suppress(queue.Empty, asyncio.QueueEmpty):
                while True:
                    pending.get_nowait()


def backlog(receiver: RTCRtpReceiver, track: MediaStreamTrack) -> tuple[int, int]:
    """(encoded frames waiting for the decoder, decoded frames waiting for us)."""
    decoder, frames = _private(receiver, "_RTCRtpReceiver__decoder_queue"), _private(track, "_queue")
    return (
        decoder.qsize() if isinstance(decoder, queue.Queue) else 0,
        frames.qsize() if isinstance(frames, asyncio.Queue) else 0,
    )


async def close_quietly(pc: RTCPeerConnection) -> None:
    """Closes a peer connection; aiortc may raise closing one it never finished setting up."""
    try:
        await pc.close()
    except Exception:  # noqa: BLE001
        log.debug("closing a peer connection failed", exc_info=True)


class Whip:
    """The recorder's WHIP sessions, by session id."""

    def __init__(self, host: Host, config: WhipConfig) -> None:
        self.host = host
        self.config = config
        self.sessions: dict[str, PublisherSession] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self._presence: dict[tuple[str, str], asyncio.Task[None]] = {}  # last callback per (room, participant)
        self.closing = False

    def spawn(self, coro: Any, session: PublisherSession | None = None) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        for tasks in (self.tasks, session.tasks if session is not None else None):
            if tasks is not None:
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return task

    def in_room(self, room_id: str) -> list[PublisherSession]:
        return [s for s in self.sessions.values() if s.room_id == room_id]

    async def publish(self, room_id: str, publisher: Publisher, backend: str, offer: str) -> PublisherSession:
        """A new session for `offer` (its answer in `session.pc.localDescription`); `Refused` when it cannot be."""
        if self.closing:
            raise Refused(503, "stopping", "the recorder is shutting down; publish again in a moment")
        kinds = check_offer(offer)
        others = {s.participant_id for s in self.in_room(room_id)} - {publisher.participant_id}
        if len(others) >= self.config.max_publishers:
            raise Refused(
                409,
                "publishers",
                f"room {room_id} has {len(others)} publishers, the most it takes (CALLREC_MAX_PUBLISHERS_PER_ROOM)",
            )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # host candidates only: no STUN server of aiortc's
        feed = Feed(publisher.participant_id, publisher.name, publisher.role)
        session = PublisherSession(secrets.token_urlsafe(16), room_id, publisher, backend, pc, feed)
        self.sessions[session.id] = session  # holds its place under the cap while it negotiates
        pc.on("connectionstatechange", lambda: self._state_changed(session))
        try:
            for kind in kinds:
                pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(preferred_codecs(kind))
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            except OperationError as exc:
                raise Refused(406, "codec", f"no offered codec is supported ({exc}): {SUPPORTED_TEXT}") from None
            except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds on a bad offer
                raise Refused(400, "sdp", f"the offer cannot be used: {exc}"[:500]) from None
            try:
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception as exc:  # noqa: BLE001 - an offer aiortc took but cannot answer (e.g. a broken BUNDLE)
                raise Refused(400, "sdp", f"the offer cannot be answered: {exc!r}"[:500]) from None
        except BaseException:
            self.sessions.pop(session.id, None)
            await close_quietly(pc)
            raise
        mine = [s for s in self.in_room(room_id) if s.participant_id == publisher.participant_id and s is not session]
        if any(other.created_s > session.created_s for other in mine):
            self.end(session, "a newer session of the same participant was answered first")
        if session.ended:  # replaced, failed or shut down while it negotiated
            raise Refused(409, "ended", "the session ended before it was answered (a newer one replaced it?)")
        for old in mine:  # all older: the newest session of a participant is the one that stays
            self.end(old, f"replaced by session {session.id}")
        for transceiver in pc.getTransceivers():
            receiver, track = transceiver.receiver, transceiver.receiver.track
            if track is not None:
                clock = session.clock.track()
                watch_sender_reports(receiver, clock)
                self.spawn(self._read(session, receiver, track, clock), session)
        self.spawn(self._watch(session), session)
        log.info("WHIP session %s of %s in room %s: %s", session.id, publisher.participant_id, room_id, kinds)
        return session

    def _state_changed(self, session: PublisherSession) -> None:
        state = session.pc.connectionState
        if session.ended:
            return
        if state == "connected" and session.connected_s is None:
            session.connected_s = time.monotonic()
            self.host.stages.get(session.room_id).add(session.feed)
        elif state in ("failed", "closed"):
            self.end(session, f"the connection {state}")

    async def _read(
        self, session: PublisherSession, receiver: RTCRtpReceiver, track: MediaStreamTrack, clock: TrackClock
    ) -> None:
        push = session.feed.push_video if track.kind == "video" else session.feed.push_audio
        failed = False
        while not session.ended:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            session.last_media_s = now
            session.frames += 1
            if session.frames % 16 == 0:
                await asyncio.sleep(0)  # recv() of a queued frame does not yield: let the other publishers run
            if not session.joined:  # in the call from its first media on: presence follows real media
                session.joined = True
                self._send_presence(session, "joined")
            try:
                capture_s = clock.capture(frame.pts, frame.time_base, rtp_origin(receiver), now)
                if needs_conversion(frame):  # a large or odd picture: scaled on a thread, the loop goes on
                    await asyncio.to_thread(push, frame, capture_s)  # type: ignore[arg-type]
                else:
                    push(frame, capture_s)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - a frame that cannot be taken is dropped; reading goes on
                if not failed:
                    log.exception("WHIP session %s: dropping a %s frame (later ones silently)", session.id, track.kind)
                failed = True

    async def _watch(self, session: PublisherSession) -> None:
        """Drops the session when it does not connect in time, goes quiet, or falls too far behind."""
        config = self.config
        step = max(0.05, min(0.25, config.connect_timeout_s / 4, config.media_timeout_s / 4))
        refreshed = time.monotonic()
        while not session.ended:
            await asyncio.sleep(step)
            now = time.monotonic()
            if session.connected_s is None:
                if now - session.created_s > config.connect_timeout_s:
                    self.end(session, f"ICE/DTLS did not connect within {config.connect_timeout_s:g} s")
                continue
            if now - (session.last_media_s or session.connected_s) > config.media_timeout_s:
                self.end(session, f"no media for {config.media_timeout_s:g} s")
                continue
            if session.joined and now - refreshed >= config.presence_refresh_s:
                refreshed = now
                self._send_presence(session, "joined")
            for transceiver in session.pc.getTransceivers():
                track = transceiver.receiver.track
                if track is not None:
                    encoded, decoded = backlog(transceiver.receiver, track)
                    if encoded > MAX_DECODER_BACKLOG or decoded > MAX_TRACK_BACKLOG:
                        self.end(session, f"it sends more {track.kind} than this recorder can decode")
                        break

    def end(self, session: PublisherSession, why: str) -> None:
        """Ends a session at once: its feed leaves the stage, `left` is sent if it had joined, its tasks stop."""
        if session.ended:
            return
        session.ended = True
        log.info("WHIP session %s of %s in room %s ended: %s", session.id, session.participant_id, session.room_id, why)
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        session.feed.close()
        current = asyncio.current_task()
        for task in list(session.tasks):
            if task is not current:
                task.cancel()
        for transceiver in session.pc.getTransceivers():
            drain(transceiver.receiver, transceiver.receiver.track)
        self.spawn(close_quietly(session.pc))
        if session.joined:
            self._send_presence(session, "left")

    def _send_presence(self, session: PublisherSession, state: str) -> None:
        key = (session.room_id, session.participant_id)
        previous = self._presence.get(key)
        publisher = session.publisher
        participant = {"id": publisher.participant_id, "name": publisher.name, "role": publisher.role}
        payload = {"token": session.room_id, "participant": participant, "generation": publisher.generation}
        body = json.dumps({"type": "publisher", "publisher": payload | {"state": state}}).encode()
        task = self.spawn(self._post_after(previous, f"{session.backend}{CALLBACK_PATH}", body, state, session))
        self._presence[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._presence.get(key) is done:
                del self._presence[key]

        task.add_done_callback(forget)

    async def _post_after(
        self, previous: asyncio.Task[None] | None, url: str, body: bytes, state: str, session: PublisherSession
    ) -> None:
        if previous is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(previous)
        response, _ = await self.host._post(url, body)
        if response is None or response.status_code != 200:
            status = None if response is None else response.status_code
            log.error("publisher %s callback to %s not accepted (%s)", state, url, status)
        if state == "joined" and response is not None and response.status_code in GONE:
            self.end(session, f"the back end answered {response.status_code}: the room is gone or closed, or the "
                              "publish token was revoked")  # fmt: skip

    def find(self, room_id: str, session_id: str) -> PublisherSession | None:
        session = self.sessions.get(session_id)
        return session if session is not None and session.room_id == room_id else None

    async def close(self) -> None:
        """Ends every session (each joined publisher leaves) and waits a while for the callbacks to go out."""
        self.closing = True
        for session in list(self.sessions.values()):
            self.end(session, "the recorder is shutting down")
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=SHUTDOWN_WAIT_S)


def refusal(refused: Refused, headers: dict[str, str] | None = None) -> tuple[Response, int, dict[str, str]]:
    return jsonify(refused.body()), refused.status, headers or {}


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


async def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.body:
        size += len(chunk)
        if size > DRAIN_BYTES:
            return None  # the connection is dropped unread
        if size <= limit:
            chunks.append(chunk)
    # A body a little too long is read to its end, so that the client reads the 413 rather than a reset.
    return b"".join(chunks) if size <= limit else None


def _publisher(room_id: str, secret: str, *, expired_ok: bool = False) -> Publisher:
    """The token's publisher for `room_id`; `Refused` 404 / 401 / 403."""
    if not is_plain_id(room_id):
        raise Refused(404, "room", "no such room: room ids are 1 to 128 letters, digits, '_' or '-'")
    try:
        return verify(secret, bearer(request.headers.get("Authorization")), room_id, expired_ok=expired_ok)
    except PublishTokenError as exc:
        raise Refused(exc.status, "token", exc.message) from None


def add_whip_routes(app: Quart, whip: Whip) -> None:
    """The WHIP resource on the recorder app; its sessions end when the app stops serving."""

    @app.route("/whip/<room_id>", methods=["POST"], provide_automatic_options=False)
    async def whip_post(room_id: str) -> tuple[Response | str, int, dict[str, str]]:
        try:
            if _media_type(request.headers.get("Content-Type")) != "application/sdp":
                raise Refused(415, "content-type", "send the SDP offer with Content-Type: application/sdp")
            if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
                raise Refused(413, "size", f"the SDP offer is larger than {MAX_SDP_BYTES} bytes")
            publisher = _publisher(room_id, whip.config.secret)
            backend = whip.host.backends.pick(request.headers.get(signing.BACKEND_HEADER))
            raw = await _read_body(MAX_SDP_BYTES)
            if raw is None:
                raise Refused(413, "size", f"the SDP offer is larger than {MAX_SDP_BYTES} bytes")
            try:
                offer = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(400, "sdp", "the SDP offer is not UTF-8 text") from None
            session = await whip.publish(room_id, publisher, backend, offer)
        except Refused as refused:
            log.warning("WHIP offer for room %r refused: %s %s", room_id[:200], refused.status, refused.message)
            return refusal(refused)
        headers = {"Content-Type": "application/sdp", "Location": f"/whip/{room_id}/{session.id}"}
        response = Response(session.pc.localDescription.sdp, status=201, headers=headers)
        for link in ice_server_links(whip.config.ice_servers):
            response.headers.add("Link", link)
        return response, 201, {}

    @app.route("/whip/<room_id>/<session_id>", methods=["DELETE"], provide_automatic_options=False)
    async def whip_delete(room_id: str, session_id: str) -> tuple[Response, int, dict[str, str]]:
        try:
            caller = _publisher(room_id, whip.config.secret, expired_ok=True)  # it still ends what it started
            session = whip.find(room_id, session_id)
            if session is None:
                raise Refused(404, "session", "no such WHIP session in this room")
            if caller.participant_id != session.participant_id and caller.role != "moderator":
                raise Refused(403, "token", "this publish token is another participant's: only its own or a "
                              "moderator's ends a session")  # fmt: skip
        except Refused as refused:
            return refusal(refused)
        whip.end(session, "deleted by the publisher")
        return jsonify({}), 200, {}

    async def options(room_id: str, session_id: str | None = None) -> tuple[str, int, dict[str, str]]:
        return "", 204, {"Allow": ALLOW, "Accept-Post": "application/sdp"}

    async def patch(room_id: str, session_id: str | None = None) -> tuple[Response, int, dict[str, str]]:
        refused = Refused(405, "method", "this WHIP endpoint takes no PATCH (no trickle ICE, no ICE restart)")
        return refusal(refused, {"Allow": ALLOW})

    for rule in ("/whip/<room_id>", "/whip/<room_id>/<session_id>"):
        suffix = "session" if "session_id" in rule else "room"
        app.add_url_rule(rule, f"whip_options_{suffix}", options, methods=["OPTIONS"], provide_automatic_options=False)
        app.add_url_rule(rule, f"whip_patch_{suffix}", patch, methods=["PATCH"], provide_automatic_options=False)

    @app.after_serving
    async def end_whip_sessions() -> None:
        await whip.close()
