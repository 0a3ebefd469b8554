"""Talk-style recording control by room token (= room id), in OCS envelopes.

`POST` / `DELETE /recording/{token}` start and stop; `POST /recording/{token}/share-chat` and
`DELETE /recording/{token}/notification` take up or dismiss a stored recording's offer. Answers as Talk's
`RecordingController` gives them: 400 with `{"error": "status" | "recording" | "call" | "config" | "file" |
"system"}` (a start checks in that order), 401 without a credential, 404 with empty data for an unknown room or a
caller who is not in it, 403 with empty data without recording control of the room, 412 while the lobby is on for
a caller who is not a moderator. A start answers once the recorder took it (the room's `callRecording` is then 3/4,
and 1/2 once the recorder reports `started`); one the recorder refused answers 500 and changes nothing. A stop is
sent to the recorder whenever the room's status is not 0 (again, if it was sent before the recorder confirmed);
the status changes when the recorder reports `stopped`.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, Response, g, request

from callrec.api import schemas
from callrec.api.auth import APPS_AND_MEMBERS, authenticate, confine, principal, require
from callrec.api.errors import ApiError
from callrec.api.ocs import OCS_BASE, ocs_response
from callrec.api.operations import Answer, Who, declare, query
from callrec.api.services import services
from callrec.domain import talk_room
from callrec.domain.errors import ServiceUnavailable
from callrec.domain.layout import RecordingConfig
from callrec.domain.notifications import Actor, ShareRequest
from callrec.domain.recording import RecordingKind
from callrec.domain.tokens import Permission, Principal
from callrec.recordings import errors as service
from callrec.storage.rows import RoomRow

blueprint = Blueprint("talk", __name__, url_prefix=OCS_BASE)

KINDS = {1: RecordingKind.VIDEO, 2: RecordingKind.AUDIO}  # Talk's `status` of a start


def talk_answers(**more: str) -> dict[int, Answer]:
    """What every Talk endpoint may answer, in OCS envelopes, with the endpoint's own reasons."""
    reasons = {
        200: "Done",
        401: "No credential",
        403: "No recording control of this room (empty data)",
        404: "No such room, or the caller is not in it (empty data)",
        503: "Temporal is not available; try again (`Retry-After`)",
    } | {int(status.removeprefix("s")): text for status, text in more.items()}
    return {status: Answer(text, schemas.Ocs) for status, text in reasons.items()}


def talk_parameter(name: str, description: str) -> dict[str, object]:
    return query(name, {"type": "integer", "minimum": 0}, description + " (also as a form field or in a JSON body)")


class TalkError(Exception):
    """Talk's answer `{"error": error}`, or empty data (`error` None) as Talk's middleware refuses access."""

    def __init__(self, error: str | None, status: int = 400, message: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.message = message


# Talk's answer to each of the recordings service's refusals: (error, status).
SERVICE_ERRORS: dict[type[Exception], tuple[str | None, int]] = {
    service.RoomNotFound: (None, 404),
    service.RecordingDisabled: ("config", 400),
    service.NoParticipants: ("call", 400),
    service.ConsentMissing: ("consent", 400),
    service.RoomAlreadyRecording: ("recording", 400),
    service.ShareFailed: ("system", 400),
    service.OfferClosed: ("file", 400),
}


async def talk_error(exc: TalkError) -> Response:
    data: object = [] if exc.error is None else {"error": exc.error}
    return ocs_response(data, exc.status, exc.message or "")


async def recording_error(exc: service.RecordingError) -> Response:
    if isinstance(exc, service.StartRefused):  # Talk: the recording server's refusal is not caught (500)
        return await talk_error(TalkError(None, 500, str(exc)))
    error, status = SERVICE_ERRORS.get(type(exc), ("recording", 400))
    return await talk_error(TalkError(error, status))


async def unavailable(exc: ServiceUnavailable) -> Response:
    if isinstance(exc, service.WorkerUnavailable):  # no worker took it: the answer names the recording
        data = {"error": "system", "recordingId": exc.recording_id, "message": str(exc)}
        response = ocs_response(data, 503, str(exc))
    elif isinstance(exc, service.NoRecorderCapacity):  # the room's status stays as it was: nothing started
        response = ocs_response({"error": exc.code, "message": str(exc)}, 503, str(exc))
    else:
        response = ocs_response({"error": "system"}, 503, "Service Unavailable")
    response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


async def api_error(exc: ApiError) -> Response:
    return ocs_response({"error": exc.error, "message": exc.message}, exc.status, exc.message)


def answer_errors_as_talk(bp: Blueprint) -> None:
    """The Talk blueprints answer every refusal in OCS envelopes, as Talk does."""
    bp.register_error_handler(TalkError, talk_error)
    bp.register_error_handler(service.RecordingError, recording_error)
    bp.register_error_handler(ServiceUnavailable, unavailable)
    bp.register_error_handler(ApiError, api_error)


answer_errors_as_talk(blueprint)


async def controlled_room(token: str) -> tuple[RoomRow, Principal]:
    """The room and the caller, if it may control the room's recordings (API key, or a member with control), with
    Talk's refusals: 401 without a credential, 404 (empty) for an unknown room or a caller not in it, 403 (empty)
    without control."""
    g.principal = authenticate()
    who = principal()
    if who is None or who.kind not in APPS_AND_MEMBERS:
        raise TalkError(None, 401)
    room = await services().catalog.get_room(token)
    if room is None or not confine(who, token):
        raise TalkError(None, 404)
    try:
        require(Permission.CONTROL, kinds=APPS_AND_MEMBERS, room_id=token)
    except ApiError:
        raise TalkError(None, 403) from None
    return room, who


def actor_of(who: Principal) -> Actor:
    """The caller as Talk names an actor: a user by its authenticated id (a member's minted id, a user token's, or
    `api-key`), with the display name a member chose."""
    return Actor(type="users", id=who.subject, name=who.name)


def check_lobby(room: RoomRow, who: Principal) -> None:
    if room.lobby and who.kind == "member" and who.role != "moderator":
        raise TalkError("lobby", 412)


async def param(name: str) -> object:
    """A request parameter, from a JSON body, a form, or the query string (as Talk clients send them)."""
    if request.mimetype == "application/json":
        try:
            body: Any = json.loads(await request.get_data())
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deeply: no parameters, as in Talk
            return None
        return body.get(name) if isinstance(body, dict) else None
    return (await request.form).get(name) or request.args.get(name)


async def whole_number(name: str, error: str) -> int:
    raw = await param(name)
    text = str(raw)
    digits = isinstance(raw, int | str) and not isinstance(raw, bool) and text.isascii() and text.isdigit()
    if not digits or len(text) > 18:
        raise TalkError(error)  # 18 digits: any timestamp or file id, and it fits the database's 64 bits
    return int(text)


@blueprint.post("/recording/<token>")
@declare(
    "talkStartRecording",
    "Start recording the room (Talk)",
    tag="Talk",
    security=Who.APPS_AND_MEMBERS,
    responses=talk_answers(
        s400="In this order: `status` not 1 or 2, already recording (`recording`), no call (`call`), recording "
        "disabled (`config`); a participant of the call has not consented to be recorded (`consent`)",
        s412="The lobby is on and the caller is not a moderator",
        s500="The recorder refused the start or could not be reached: the room's status is as it was",
    ),
    parameters=(talk_parameter("status", "1: video, 2: audio"),),
)
async def start(token: str) -> Response:
    room, who = await controlled_room(token)
    check_lobby(room, who)
    raw = await param("status")
    status = int(raw) if isinstance(raw, int | str) and str(raw) in ("1", "2") else None
    if status is None:
        raise TalkError("status")
    recordings = services().recordings
    if room.call_recording not in talk_room.IDLE or await services().catalog.recording_in_progress(token) is not None:
        raise TalkError("recording")
    call = await services().catalog.get_call(token)
    if call is None or not call.participants:
        raise TalkError("call")
    if not RecordingConfig.model_validate(room.config).enabled:
        raise TalkError("config")
    await recordings.start(room, who.subject, KINDS[status], until="accepted")
    return ocs_response(None)


@blueprint.delete("/recording/<token>")
@declare(
    "talkStopRecording",
    "Stop recording the room (Talk)",
    tag="Talk",
    security=Who.APPS_AND_MEMBERS,
    responses=talk_answers(s412="The lobby is on and the caller is not a moderator"),
)
async def stop(token: str) -> Response:
    """Nothing to do while the room's status is 0; otherwise the stop goes to the recorder (again, when asked again
    before it confirmed), naming the caller as its actor."""
    room, who = await controlled_room(token)
    check_lobby(room, who)
    if room.call_recording != talk_room.NONE:
        await services().recordings.stop_room(room.room_id, actor_of(who))
    return ocs_response(None)


@blueprint.post("/recording/<token>/share-chat")
@declare(
    "talkShareRecording",
    "Share a stored recording to the room's chat (Talk)",
    tag="Talk",
    security=Who.APPS_AND_MEMBERS,
    responses=talk_answers(s400="No such offer (`file`), or posting failed (`system`)"),
    parameters=(
        talk_parameter("timestamp", "The notification's timestamp"),
        talk_parameter("fileId", "The notification's file id"),
    ),
)
async def share_chat(token: str) -> Response:
    """Posts a stored recording to the room's chat, once: repeating the request changes nothing."""
    room, who = await controlled_room(token)
    timestamp = await whole_number("timestamp", "file")
    file_id = await whole_number("fileId", "file")
    share = ShareRequest(actor=actor_of(who), timestamp=timestamp, file_id=file_id)
    await services().recordings.offers.share(room.room_id, share)
    return ocs_response(None)


@blueprint.delete("/recording/<token>/notification")
@declare(
    "talkDismissNotification",
    "Dismiss the room's recording notifications of a timestamp (Talk)",
    tag="Talk",
    security=Who.APPS_AND_MEMBERS,
    responses=talk_answers(s400="`timestamp` is not a whole number"),
    parameters=(talk_parameter("timestamp", "The notification's timestamp"),),
)
async def dismiss_notification(token: str) -> Response:
    """Dismisses the room's notifications of that timestamp (a stored recording's closes its share offer)."""
    room, _ = await controlled_room(token)
    timestamp = await whole_number("timestamp", "timestamp")
    catalog = services().catalog
    for row in await catalog.room_notifications_at(room.room_id, timestamp):
        if row.state == "open":
            await catalog.close_notifications("dismissed", notification_id=row.notification_id)
    return ocs_response(None)
