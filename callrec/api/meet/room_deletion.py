"""DELETE /rooms/{roomId} as OpenVidu Meet answers it: the `withMeeting` and `withRecordings` policies, a
`successCode` and `message` for each outcome, and Meet's 409 error codes.

A room's "meeting" is its call (PUT /rooms/{roomId}/call, or WHIP publishers) while anyone is in it, as Talk's
`hasCall`: a call its publishers have all left (WHIP presence keeps it for a publisher that reconnects) is deleted
with the room. Differences kept on purpose:

* `withMeeting=when_meeting_ends` while a call runs is refused (409): callrec does not schedule deletions.
* `withRecordings=close` always closes the room (no more calls, member tokens revoked), also when it has no
  recordings (Meet deletes a room without recordings whatever the policy); without `withMeeting` it also ends
  the call (callrec's `close` did so before `withMeeting` existed). The answer says which.
* A recording still in progress is never deleted: `withRecordings=force` then answers 409 (stop it first, or
  close the room, which stops and stores it).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callrec.api.auth import principal
from callrec.api.errors import ApiError
from callrec.api.meet.views import room_view
from callrec.api.services import services

WithMeeting = Literal["fail", "force", "when_meeting_ends"]
WithRecordings = Literal["fail", "force", "close"]


class DeleteRoomQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    withMeeting: WithMeeting | None = None  # Meet's default: fail (see `meeting_policy`)
    withRecordings: WithRecordings = "fail"

    def meeting_policy(self) -> WithMeeting:
        if self.withMeeting is not None:
            return self.withMeeting
        return "force" if self.withRecordings == "close" else "fail"


def _conflict(code: str, message: str) -> ApiError:
    """Meet's deletion conflicts: the error code as `error`, 409."""
    return ApiError(409, code, message)


def _check_policies(room_id: str, meeting: bool, recordings: bool, query: DeleteRoomQuery) -> None:
    base = f"Room '{room_id}'"
    with_meeting = query.meeting_policy()
    if meeting and with_meeting == "fail":
        if recordings:
            raise _conflict(
                "room_with_recordings_has_active_meeting",
                f"{base} with recordings cannot be deleted because it has an active meeting.",
            )
        raise _conflict("room_has_active_meeting", f"{base} cannot be deleted because it has an active meeting.")
    if recordings and query.withRecordings == "fail":
        if meeting and with_meeting == "when_meeting_ends":
            raise _conflict(
                "room_with_active_meeting_has_recordings_cannot_schedule_deletion",
                f"{base} with active meeting cannot be scheduled to be deleted because it has recordings.",
            )
        if meeting:
            raise _conflict(
                "room_with_active_meeting_has_recordings",
                f"{base} with active meeting cannot be deleted because it has recordings.",
            )
        raise _conflict("room_has_recordings", f"{base} cannot be deleted because it has recordings.")
    if meeting and with_meeting == "when_meeting_ends":
        raise ApiError(409, "Room Error", f"{base} has an active meeting and callrec does not schedule deletions: "
                       "end the call (DELETE /rooms/{roomId}/call) first, or use withMeeting=force")  # fmt: skip


async def delete_room(room_id: str, query: DeleteRoomQuery) -> tuple[dict[str, Any], int]:
    """Deletes or closes the room per the policies; the answer body and its status (always 200: nothing is
    scheduled). The room must exist (the caller checked)."""
    catalog, recordings = services().catalog, services().recordings
    call = await catalog.get_call(room_id)
    meeting = call is not None and bool(call.participants)  # a call nobody is in (publishers gone) is not one
    before = await recordings.room(room_id)
    rows = list(await catalog.recordings(room_id=room_id, limit=1_000_000))
    _check_policies(room_id, meeting, bool(rows), query)
    base = f"Room '{room_id}'"
    in_progress = await catalog.recording_in_progress(room_id)

    if query.withRecordings == "close":
        if call is not None:
            await catalog.end_call(room_id)
        await catalog.set_room_status(room_id, "closed")
        await catalog.revoke_member_tokens(room_id)  # they stay refused even if the room opens again
        if in_progress is not None:
            await recordings.end(in_progress.recording_id, "room_deleted")
        room = await recordings.room(room_id)
        if call is not None:
            await services().calls.announce("meetingEnded", room, call.started_date)
        who = principal()
        if meeting:
            code = "room_with_active_meeting_closed"
            message = f"{base} with active meeting has been closed instead of deleted because it has recordings"
        else:
            code = "room_closed"
            message = f"{base} has been closed instead of deleted because it has recordings"
        if not rows:
            message = f"{base} has been closed (withRecordings=close)"
        body = {
            "successCode": code,
            "message": message,
            "room": room_view(room, with_secrets=who is not None and who.is_admin),
            "recordings": len(rows),
        }
        return body, 200

    if in_progress is not None:
        raise ApiError(409, "Room Error", f"{base} has a recording in progress; stop it first, "
                       "or close the room (withRecordings=close), which stops and stores it")  # fmt: skip
    reasons = await recordings.delete_many([row.recording_id for row in rows])
    failed = [(recording_id, reason) for recording_id, reason in reasons.items() if reason is not None]
    if failed:
        raise ApiError(409, "Room Error", f"{base} kept: {len(failed)} recordings could not be deleted",
                       [{"field": recording_id, "message": reason} for recording_id, reason in failed])  # fmt: skip
    await catalog.delete_room(room_id)  # its call goes with it
    if call is not None:
        await services().calls.announce("meetingEnded", before, call.started_date)
    if meeting and rows:
        code, message = (
            "room_with_active_meeting_and_recordings_deleted",
            f"{base} with active meeting and its recordings deleted successfully",
        )
    elif meeting:
        code, message = "room_with_active_meeting_deleted", f"{base} with active meeting deleted successfully"
    elif rows:
        code, message = "room_and_recordings_deleted", f"{base} and its recordings deleted successfully"
    else:
        code, message = "room_deleted", f"{base} deleted successfully"
    return {"successCode": code, "message": message, "deletedRecordings": [r.recording_id for r in rows]}, 200
