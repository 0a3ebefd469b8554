"""Publishing into a room by WHIP (RFC 9725): publish tokens, the WHIP endpoint, and what a publisher may see.

`POST /rooms/{roomId}/publish-token` mints a token for one participant of one room (`callrec.domain.publish`).
The WHIP endpoint checks what it can here (content type, size, token, room) and hands the very same request to
a recorder of the pool (the one recording the room, else the one holding the room's other publishers, else the
least loaded: `storage/pool.py`), which terminates WebRTC, checks the token again with the secret
it shares with the API, and answers with the SDP. The media then flows from the publisher straight to the
recorder; the API only relays the offer/answer and the session's DELETE, so publishers see one origin.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify, request

from callrec.api import schemas
from callrec.api.auth import require
from callrec.api.errors import ApiError
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.domain import publish, signing
from callrec.domain.ids import PLAIN_ID, is_plain_id
from callrec.storage.pool import RecorderPool, RecorderView
from callrec.storage.rows import RoomRow

log = logging.getLogger(__name__)
blueprint = Blueprint("whip", __name__)
MAX_SDP_BYTES = 64 * 1024
SDP = "application/sdp"
ALLOW = "POST, DELETE, OPTIONS"
SESSION_SEP = "~"  # a session's resource is /whip/{recorderId}~{sessionId}
RECORDER_TIMEOUT = httpx.Timeout(30.0, connect=5.0)  # the recorder answers once ICE gathering is done
# What the recorder's answer passes on to the publisher (besides its Content-Type).
RELAYED_HEADERS = ("Link", "ETag", "Retry-After", "Accept-Post", "Allow")
# Routes that take a publish token in `Authorization: Bearer`, not a user token (app.py skips its check).
PUBLISH_TOKEN_ENDPOINTS = {
    "api_v1.whip.offer",
    "api_v1.whip.end_session",
    "api_v1.whip.publish_status",
    "api_v1.whip.whip_options",  # anonymous (ANONYMOUS_ENDPOINTS)
    "api_v1.whip.whip_patch",
}


class PublishTokenRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"participantName": "Alice", "role": "speaker"}]}
    )
    participantId: str | None = Field(
        default=None,
        pattern=PLAIN_ID,
        description="who publishes (1 to 128 letters, digits, '_' or '-'); a new one when left out. A second "
        "session of the same participant replaces the first. Members always publish as themselves.",
    )
    participantName: str = Field(min_length=1, max_length=128, description="the name drawn on the tile")
    role: Literal["moderator", "speaker"] = "speaker"


def publish_error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, "Publishing Error", message, headers=headers)


def publish_secret() -> str:
    try:
        return services().settings.require_publish_secret()
    except SystemExit as exc:
        raise publish_error(503, f"Publishing is not configured: {exc}") from None


async def publishable_room(room_id: str) -> RoomRow:
    """The room, if WHIP can publish into it now: it exists (404), is open (409), and the built-in recorder
    records (409 otherwise: LiveKit and Talk's recording server take their media elsewhere)."""
    room = await services().recordings.room(room_id)
    if room.status == "closed":
        raise publish_error(409, f"Room '{room_id}' is closed")
    if services().settings.egress != "builtin":
        raise publish_error(409, "Publishing needs the built-in recorder (CALLREC_EGRESS=builtin)")
    return room


def publisher_of(room_id: str, *, expired_ok: bool = False) -> publish.Publisher:
    """The publish token's publisher (401 without a valid token, 403 for a token of another room)."""
    try:
        return publish.verify(publish_secret(), publish.bearer(request.headers.get("Authorization")), room_id,
                              expired_ok=expired_ok)  # fmt: skip
    except publish.PublishTokenError as exc:
        raise publish_error(exc.status, exc.message, {"WWW-Authenticate": 'Bearer realm="whip"'}) from None


@blueprint.post("/rooms/<room_id>/publish-token")
@declare(
    "createPublishToken",
    "Mint a WHIP publish token",
    tag="Publishing",
    security=Who.EVERYONE,
    responses={
        201: Answer("The token and where to publish with it", schemas.PublishToken),
        403: error(),
        404: error("No such room"),
        409: error("The room is closed, or another recorder than the built-in one records"),
        503: error("CALLREC_PUBLISH_SECRET is not set"),
    },
    body=PublishTokenRequest,
    notes="For the API key, an admin user token, or a member token of this room (who then publishes as "
    "itself: its `memberId` and role). The token publishes one participant into this room only, until "
    "`expiresAt` (`CALLREC_PUBLISH_TOKEN_TTL_S`); send it as `Authorization: Bearer` to `whipUrl`.",
)
async def publish_token(room_id: str, body: PublishTokenRequest) -> tuple[Response, int]:
    who = require(room_id=room_id)
    if who.kind == "user" and not who.is_admin:
        raise publish_error(403, "Insufficient permissions: a user token needs the admin role to publish")
    room = await publishable_room(room_id)
    settings = services().settings
    participant_id, role = body.participantId or publish.new_participant_id(), body.role
    if who.kind == "member":
        participant_id = who.subject.removeprefix("member:")
        role = "moderator" if who.role == "moderator" else "speaker"
    expires_at = int(time.time() + settings.publish_token_ttl_s)
    publisher = publish.Publisher(
        room_id, participant_id, body.participantName, role, expires_at, room.token_generation
    )
    token = publish.mint(publish_secret(), publisher)
    whip_url = f"{settings.backend_url}/api/v1/rooms/{room_id}/whip"
    answer = {"token": token, "whipUrl": whip_url, "expiresAt": expires_at * 1000, "participantId": participant_id}
    return jsonify(answer), 201


async def _recorder_for(room_id: str, recorder_id: str | None = None) -> RecorderView:
    """The recorder a publisher of the room goes to (the one recording the room, else the one holding its other
    publishers, else the least loaded), or, for a session, the one holding it."""
    svc = services()
    now = int(time.time() * 1000)
    pool = RecorderPool(svc.catalog)
    if recorder_id is not None:
        found = next((v for v in await pool.recorders(now) if v.recorder_id == recorder_id), None)
        if found is None:
            raise publish_error(404, "No such publishing session in this room")
        return found
    chosen = await pool.for_publisher(room_id, now)
    if chosen is None:
        raise publish_error(503, "No recorder is running; try again", {"Retry-After": "5"})
    return chosen


async def _to_recorder(recorder: RecorderView, method: str, path: str, content: bytes = b"") -> httpx.Response:
    settings = services().settings
    headers = {signing.BACKEND_HEADER: settings.backend_url}
    for name in ("Authorization", "Content-Type"):
        if (value := request.headers.get(name)) is not None:
            headers[name] = value
    try:
        async with httpx.AsyncClient(timeout=RECORDER_TIMEOUT) as http:
            return await http.request(method, f"{recorder.url.rstrip('/')}{path}", content=content, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("WHIP %s to recorder %s failed: %r", method, recorder.recorder_id, exc)
        raise publish_error(503, "The recorder cannot be reached; try again", {"Retry-After": "5"}) from None


def _relay(answer: httpx.Response, room_id: str, recorder: RecorderView) -> Response:
    if answer.status_code >= 400 and "json" not in answer.headers.get("Content-Type", ""):
        log.warning("the recorder answered WHIP with %s and no JSON", answer.status_code)
        message = f"The recorder refused the request ({answer.status_code}); is it callrec's built-in recorder?"
        raise publish_error(502 if answer.status_code >= 500 else answer.status_code, message)
    response = Response(answer.content, status=answer.status_code, content_type=answer.headers.get("Content-Type"))
    for name in RELAYED_HEADERS:
        for value in answer.headers.get_list(name):
            response.headers.add(name, value)
    location = answer.headers.get("Location")
    if location is not None:
        session_id = location.rstrip("/").rsplit("/", 1)[-1]
        # the session's resource names its recorder, so that its DELETE goes there
        response.headers["Location"] = f"/api/v1/rooms/{room_id}/whip/{recorder.recorder_id}{SESSION_SEP}{session_id}"
    return response


@blueprint.route("/rooms/<room_id>/whip", methods=["OPTIONS"])
@declare(
    "publishOptions",
    "What the WHIP endpoint takes",
    tag="Publishing",
    security=Who.NONE,
    responses={204: Answer("`Accept-Post: application/sdp`, and a `Link` per ICE server (`CALLREC_WHIP_ICE_SERVERS`)")},
)
async def whip_options(room_id: str) -> Response:
    response = Response("", status=204, headers={"Accept-Post": SDP, "Allow": ALLOW})
    for link in publish.ice_server_links(services().settings.whip_ice_servers):
        response.headers.add("Link", link)
    return response


@blueprint.post("/rooms/<room_id>/whip")
@declare(
    "publishOffer",
    "Publish into a room (WHIP)",
    tag="Publishing",
    security=Who.PUBLISHERS,
    responses={
        201: Answer("The SDP answer; `Location` is the session (DELETE it to stop)"),
        400: error("Not a usable SDP offer, or an offer without audio and video"),
        401: error("No valid publish token in `Authorization: Bearer`"),
        403: error("A publish token of another room"),
        404: error("No such room"),
        406: error("None of the offered codecs is supported (video VP8 or H.264, audio Opus)"),
        409: error("The room is closed, another recorder records, or it has its most publishers"),
        413: error("An offer above 64 KiB"),
        415: error("Not `Content-Type: application/sdp`"),
        503: error("The recorder cannot be reached"),
    },
    notes="RFC 9725: the body is the SDP offer (`Content-Type: application/sdp`), the publish token is sent as "
    "`Authorization: Bearer`; the answer carries every candidate (no trickle ICE). `Link` headers name the "
    "ICE servers of `CALLREC_WHIP_ICE_SERVERS`.",
)
async def offer(room_id: str) -> Response:
    if request.mimetype != SDP:
        raise publish_error(415, f"Send the SDP offer as Content-Type: {SDP}", {"Accept-Post": SDP})
    if (request.content_length or 0) > MAX_SDP_BYTES:
        raise publish_error(413, f"The SDP offer is larger than {MAX_SDP_BYTES} bytes")
    publisher = publisher_of(room_id)
    room = await publishable_room(room_id)
    if publisher.generation != room.token_generation:
        raise publish_error(401, f"This publish token was revoked: room '{room_id}' had its secrets rotated since",
                            {"WWW-Authenticate": 'Bearer realm="whip"'})  # fmt: skip
    body = await request.get_data(cache=False)
    assert isinstance(body, bytes)
    if len(body) > MAX_SDP_BYTES:
        raise publish_error(413, f"The SDP offer is larger than {MAX_SDP_BYTES} bytes")
    recorder = await _recorder_for(room_id)
    return _relay(await _to_recorder(recorder, "POST", f"/whip/{room_id}", body), room_id, recorder)


@blueprint.route("/rooms/<room_id>/whip/<session_id>", methods=["PATCH"])
@declare(
    "patchPublishSession",
    "Trickle ICE (not supported)",
    tag="Publishing",
    security=Who.NONE,
    responses={405: error("Every candidate is in the offer and the answer; no ICE restarts")},
)
async def whip_patch(room_id: str, session_id: str) -> Response:
    """No trickle ICE and no ICE restarts: every candidate is in the offer and the answer."""
    response = jsonify({"error": "Publishing Error", "message": "Trickle ICE and ICE restarts are not supported"})
    response.status_code = 405
    response.headers["Allow"] = ALLOW
    return response


@blueprint.delete("/rooms/<room_id>/whip/<session_id>")
@declare(
    "endPublishSession",
    "Stop publishing (WHIP)",
    tag="Publishing",
    security=Who.PUBLISHERS,
    responses={
        200: Answer("The session ended; the publisher left the call"),
        401: error("No valid publish token in `Authorization: Bearer`"),
        403: error("A publish token of another room"),
        404: error("No such session in this room"),
    },
    notes="With the publish token that started the session.",
)
async def end_session(room_id: str, session_id: str) -> Response:
    publisher_of(room_id, expired_ok=True)  # an expired token still ends the session it started
    recorder_id, sep, session = session_id.rpartition(SESSION_SEP)
    if not sep or not recorder_id or not is_plain_id(session):  # the recorder's are `secrets.token_urlsafe`
        raise publish_error(404, "No such publishing session in this room")
    recorder = await _recorder_for(room_id, recorder_id)
    return _relay(await _to_recorder(recorder, "DELETE", f"/whip/{room_id}/{session}"), room_id, recorder)


@blueprint.get("/rooms/<room_id>/publish-status")
@declare(
    "getPublishStatus",
    "Whether the room is being recorded (for publishers)",
    tag="Publishing",
    security=Who.PUBLISHERS,
    responses={
        200: Answer("Whether a recording of the room is in progress", schemas.PublishStatus),
        401: error("No valid publish token in `Authorization: Bearer`"),
        403: error("A publish token of another room"),
    },
    notes="With a publish token of the room: what a publisher's page shows.",
)
async def publish_status(room_id: str) -> Response:
    publisher_of(room_id, expired_ok=True)  # a publisher keeps seeing whether it is recorded
    recording = await services().catalog.recording_in_progress(room_id)
    status = recording.status if recording is not None else None
    return jsonify({"recording": recording is not None, "status": status})
