"""RecordingWorkflow's side effects, each one activity call: the catalog projection (with search attributes and
webhook events), the room's Talk status, the recorder's stop, the chat, notifications and the share offer; and what
the Temporal UI shows it doing now. The workflow class (`recording.py`) holds the lifecycle and its handlers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.activities.catalog import CatalogActivities
    from callrec.activities.egress import EgressActivities
    from callrec.activities.notify import NotifyActivities
    from callrec.activities.webhooks import WebhookActivities
    from callrec.domain import talk_room
    from callrec.domain.notifications import (
        Actor,
        ChatPost,
        CloseOffer,
        NotificationInfo,
        NotificationPost,
        OfferEnd,
        ShareResult,
        ShareToChat,
    )
    from callrec.domain.recording import (
        ERROR_CODE_ATTR,
        STATUS_ATTR,
        EgressStop,
        Recording,
        RecordingKind,
        RecordingState,
        RecordingStatus,
        StartRecordingInput,
    )
    from callrec.domain.talk_room import ProjectionWithRoom, StatusChange
    from callrec.domain.webhooks import EventName, WebhookEvent, notification_payload, recording_payload, status_event
    from callrec.workflows.options import ActivityOptions, execute
    from callrec.workflows.parts import RecorderParts


# The patch that keeps the room's Talk status as Talk moves it (the chat's system messages follow its changes, the
# stop names who stopped, a repeated stop is sent again); histories from before replay without it.
TALK_ROOM_STATUS = "talk-room-status"
# The patch that writes a terminal status and the room's Talk status in one local activity (`project_with_room`);
# histories from before ran `project_recording` and then `set_call_recording`.
PROJECT_WITH_ROOM = "project-with-room"


def reason_of(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause or err)


class RecordingEffects:
    """The state they read is the workflow's (set in its `__init__`)."""

    input: StartRecordingInput
    state: RecordingState
    projected: RecordingStatus
    announced_start: bool
    parts: RecorderParts | None
    stop_actor: Actor | None

    def _phase(self, text: str) -> None:
        """What the Temporal UI shows the recording doing now (the workflow's current details)."""
        workflow.set_current_details(text)

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _owner(self) -> Actor:
        return Actor(id=self.input.owner or "callrec")

    async def _wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        try:
            await workflow.wait_condition(condition, timeout=timedelta(seconds=seconds))
        except TimeoutError:
            return False
        return True

    async def _set_status(self, status: RecordingStatus, room: StatusChange | None = None) -> None:
        """Projects the new status; `room`: and moves the room's Talk status, in the same local activity."""
        self.state.status = status
        await self._project(room)

    async def _set_end_status(self, status: RecordingStatus, room_status: int) -> bool:
        """A terminal status, and (the `talk-room-status` patch; not for an uploaded file) the room's Talk status
        from recording to `room_status`: one local activity since the `project-with-room` patch, before it two.
        True when the room's status was moved."""
        if workflow.patched(PROJECT_WITH_ROOM):
            talk = workflow.patched(TALK_ROOM_STATUS) and not self.input.uploaded
            room = self._room_change(room_status, only_from=list(talk_room.IN_PROGRESS)) if talk else None
            await self._set_status(status, room)
            return talk
        await self._set_status(status)
        talk = workflow.patched(TALK_ROOM_STATUS) and not self.input.uploaded
        if talk:
            await self._room_status(room_status, only_from=list(talk_room.IN_PROGRESS))
        return talk

    async def _project(self, room: StatusChange | None = None) -> None:
        """Writes the state to the catalog (`room`: and the room's Talk status) and the search attribute, then
        announces it (webhooks)."""
        # Numbered by workflow time, so a run started by a Temporal reset (which replays an older state)
        # still outnumbers what the catalog got before the reset.
        self.state.seq = max(self.state.seq + 1, self._now_ms())
        snapshot = self.state.model_copy(deep=True)
        updates = [STATUS_ATTR.value_set(snapshot.status.value)]
        if snapshot.error is not None:  # `ErrorCode = "start_timeout"` filters the UI's list
            updates.append(ERROR_CODE_ATTR.value_set(snapshot.error))
        elif self.state.status in (RecordingStatus.COMPLETE, RecordingStatus.LIMIT_REACHED):
            updates.append(ERROR_CODE_ATTR.value_unset())  # a late upload completed a failed one
        workflow.upsert_search_attributes(updates)
        if room is None:
            await execute(CatalogActivities.project_recording, snapshot)
        else:
            await execute(CatalogActivities.project_with_room, ProjectionWithRoom(state=snapshot, room=room))
        self.projected = snapshot.status
        payload = recording_payload(Recording.of_workflow(self.input, snapshot))
        event = status_event(snapshot.status)
        if snapshot.status == RecordingStatus.ACTIVE and not self.announced_start:
            event = "recordingStarted"
        await self._emit(event, payload, f"{snapshot.seq}")

    async def _emit(self, event: EventName, data: dict[str, object], key: str) -> None:
        """Hands the event to webhook delivery (its own workflow, so a receiver that is down delays nothing here)."""
        if not self.input.webhooks:
            return
        idempotency_key = f"{self.input.recording_id}:{event}:{key}"
        await execute(
            WebhookActivities.emit_webhook,
            WebhookEvent(event=event, creation_date=self._now_ms(), data=data, idempotency_key=idempotency_key),
        )

    async def _room_status(self, status: int, *, only_from: list[int], actor: Actor | None = None) -> None:
        """Moves the room's Talk status (while this is the room's newest recording), as Talk's own changes do."""
        await execute(CatalogActivities.set_call_recording, self._room_change(status, only_from=only_from, actor=actor))

    def _room_change(self, status: int, *, only_from: list[int], actor: Actor | None = None) -> StatusChange:
        return StatusChange(
            room_id=self.input.room_id,
            status=status,
            only_from=only_from,
            recording_id=self.input.recording_id,
            actor=actor,
            dedupe_key=f"{self.input.recording_id}:status:{status}",
        )

    async def _stop_egress(self, options: ActivityOptions | None = None) -> bool:
        """Best effort: a recorder that cannot be reached is not recording for us either. False: the recorder
        answered that it does not know this recording (it will never upload)."""
        if self.parts is not None:
            await self.parts.stop()
            return True
        try:
            await execute(
                EgressActivities.stop_egress,
                EgressStop(recording_id=self.input.recording_id, room_id=self.input.room_id, actor=self.stop_actor),
                options,
            )
        except ActivityError as err:
            workflow.logger.warning("stopping egress failed: %s", reason_of(err))
            cause = err.cause
            return not (isinstance(cause, ApplicationError) and cause.type == "EgressNotFound")
        return True

    async def _chat(self, message: str, actor: Actor) -> None:
        """A Talk system message in the room's chat (`audio_` prefixed for audio recordings)."""
        if self.input.kind == RecordingKind.AUDIO and message != "recording_failed":
            message = f"audio_{message}"
        dedupe_key = f"{self.input.recording_id}:{message}"
        await execute(
            NotifyActivities.post_chat,
            ChatPost(room_id=self.input.room_id, dedupe_key=dedupe_key, actor=actor, message=message),
        )

    async def _notify(self, subject: str, message: str, file_id: int | None = None) -> NotificationInfo:
        """For the recording's owner (who started it), as Talk's."""
        input = self.input
        post = NotificationPost(
            room_id=input.room_id,
            recording_id=input.recording_id,
            dedupe_key=f"{input.recording_id}:{subject}",
            user=input.owner,
            moderators=False,  # Talk tells the recording's owner only
            subject=subject,
            message=message,
            file_id=file_id,
        )
        info = await execute(NotifyActivities.notify, post)
        await self._emit("notificationCreated", notification_payload(post, info), subject)
        return info

    async def _share(self, actor: Actor) -> ShareResult:
        input = self.input
        message_id = await execute(
            NotifyActivities.share_to_chat,
            ShareToChat(room_id=input.room_id, recording_id=input.recording_id, actor=actor),
        )
        shared = {"recordingId": input.recording_id, "roomId": input.room_id, "messageId": message_id}
        await self._emit("recordingShared", shared | {"actor": actor.model_dump()}, "chat")
        return ShareResult(message_id=message_id)

    async def _close_offer(self, end: OfferEnd) -> None:
        await execute(NotifyActivities.close_offer, CloseOffer(recording_id=self.input.recording_id, end=end))
