"""Talk's conversation and call endpoints, as far as recordings need them (OCS, `/ocs/v2.php/apps/spreed/api/v4`):

- `GET /room/{token}`: the room as Talk shows it to clients (the recording part: `callRecording`,
  `recordingConsent`, `hasCall`, `lobbyState`);
- `PUT /room/{token}/recording-consent` (`recordingConsent` 0 or 1, moderators): 412 `config` while the room's
  recording is disabled, 400 `value`, 400 `call` to turn it on while a call runs (turning it off is allowed);
- `POST /call/{token}` (`recordingConsent`, `flags`, `silent`): join the call, which feeds the call's presence;
  400 `consent` when the room needs consent to be recorded and it was not given; a given consent is logged (who,
  when, room, call) while CALLREC_RECORDING_CONSENT is not 0. `DELETE /call/{token}`: leave it; the last one to
  leave ends the call, which stops its recording.

Only room members (a member token) and users of the room are participants; others get 404 with empty data, as Talk
answers a caller who is not in the conversation.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g

from callrec.api.auth import authenticate, confine, principal
from callrec.api.ocs import ocs_response
from callrec.api.operations import Who, declare
from callrec.api.services import services
from callrec.api.talk.endpoints import (
    TalkError,
    answer_errors_as_talk,
    check_lobby,
    controlled_room,
    param,
    talk_answers,
    talk_parameter,
)
from callrec.domain import talk_room
from callrec.domain.layout import RecordingConfig
from callrec.domain.participants import Participant
from callrec.domain.tokens import Principal
from callrec.storage.rows import RoomRow

OCS_V4 = "/ocs/v2.php/apps/spreed/api/v4"
blueprint = Blueprint("talk_conversations", __name__, url_prefix=OCS_V4)
answer_errors_as_talk(blueprint)
PARTICIPANTS = frozenset({"member", "user"})


async def participant_room(token: str) -> tuple[RoomRow, Principal]:
    """The room and the caller, if the caller is one of its participants (401 without a credential, 404 empty)."""
    g.principal = authenticate()
    who = principal()
    if who is None:
        raise TalkError(None, 401)
    room = await services().catalog.get_room(token)
    if room is None or not confine(who, token):  # a member token reaches its own room only
        raise TalkError(None, 404)
    return room, who


async def room_json(room: RoomRow) -> dict[str, Any]:
    """The recording part of Talk's room object."""
    setting = services().settings.recording_consent
    call = await services().catalog.get_call(room.room_id)
    return {
        "token": room.room_id,
        "name": room.room_name,
        "displayName": room.room_name,
        "type": 3,  # public: anyone with the room's link joins
        "hasCall": call is not None and bool(call.participants),
        "lobbyState": int(room.lobby),
        "callRecording": room.call_recording,
        "recordingConsent": talk_room.effective_consent(setting, room.recording_consent),
    }


async def flag(name: str) -> bool:
    raw = await param(name)
    return raw is True or (isinstance(raw, str | int) and str(raw).lower() in ("1", "true"))


@blueprint.get("/room/<token>")
@declare(
    "talkGetRoom",
    "Get a room as Talk shows it (Talk)",
    tag="Talk",
    security=Who.EVERYONE,
    responses=talk_answers(),
)
async def get_room(token: str) -> Response:
    room, _ = await participant_room(token)
    return ocs_response(await room_json(room))


@blueprint.put("/room/<token>/recording-consent")
@declare(
    "talkSetRecordingConsent",
    "Require consent to be recorded when joining the room's call (Talk)",
    tag="Talk",
    security=Who.APPS_AND_MEMBERS,
    responses=talk_answers(
        s400="`recordingConsent` not 0 or 1 (`value`), or turned on while a call runs (`call`)",
        s412="The room's recording is disabled (`config`)",
    ),
    parameters=(talk_parameter("recordingConsent", "1: joining the call needs consent to be recorded"),),
)
async def set_recording_consent(token: str) -> Response:
    """Counts while CALLREC_RECORDING_CONSENT is 2 (moderators choose per room); stored all the same otherwise."""
    room, _ = await controlled_room(token)
    if not RecordingConfig.model_validate(room.config).enabled:
        raise TalkError("config", 412)
    raw = await param("recordingConsent")
    value = int(str(raw)) if isinstance(raw, int | str) and str(raw) in ("0", "1") else None
    if value != room.recording_consent:
        if value is None:
            raise TalkError("value")
        call = await services().catalog.get_call(token)
        if value == 1 and call is not None and call.participants:
            raise TalkError("call")
        await services().recordings.talk_rooms.set_consent(token, value)
        room = await services().recordings.room(token)
    return ocs_response(await room_json(room))


@blueprint.post("/call/<token>")
@declare(
    "talkJoinCall",
    "Join the room's call (Talk)",
    tag="Talk",
    security=Who.EVERYONE,
    responses=talk_answers(
        s400="The room needs consent to be recorded and `recordingConsent` was not true (`consent`)",
        s412="The lobby is on and the caller is not a moderator",
    ),
    parameters=(
        talk_parameter("recordingConsent", "true: the caller agrees to be recorded"),
        talk_parameter("flags", "Talk's in-call flags (taken, not used)"),
    ),
)
async def join_call(token: str) -> Response:
    room, who = await participant_room(token)
    if who.kind not in PARTICIPANTS:
        raise TalkError(None, 404)  # the API key is not a participant
    check_lobby(room, who)
    setting = services().settings.recording_consent
    consent = await flag("recordingConsent")
    if not consent and talk_room.effective_consent(setting, room.recording_consent):
        raise TalkError("consent")
    calls = services().calls
    role = "moderator" if who.role == "moderator" or who.kind == "user" else "speaker"
    await calls.join(token, Participant(id=who.subject, name=(who.name or who.subject)[:128], role=role))
    if consent and setting != 0:
        call = await services().catalog.get_call(token)
        started = call.started_date if call is not None else None
        await services().recordings.talk_rooms.add_consent(token, "users", who.subject, started)
    return ocs_response(None)


@blueprint.delete("/call/<token>")
@declare("talkLeaveCall", "Leave the room's call (Talk)", tag="Talk", security=Who.EVERYONE, responses=talk_answers())
async def leave_call(token: str) -> Response:
    """The last participant to leave ends the call: its recording stops (the recorder gets `"stop": []`)."""
    _, who = await participant_room(token)
    if who.kind not in PARTICIPANTS:
        raise TalkError(None, 404)
    await services().calls.leave(token, who.subject, end_when_empty=True)
    return ocs_response(None)
