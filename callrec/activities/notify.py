"""Notifications and the room's chat: each write carries a dedupe key, so a retried activity writes once."""

from __future__ import annotations

import time

from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.domain.notifications import (
    ChatPost,
    CloseOffer,
    NotificationInfo,
    NotificationPost,
    ShareToChat,
    file_id,
)
from callrec.media.sniff import CONTENT_TYPES
from callrec.storage.catalog import Catalog
from callrec.storage.rows import ChatMessageRow, NotificationRow

MESSAGE_TYPES = {"video": "record-video", "audio": "record-audio"}


class NotifyActivities:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @activity.defn
    async def post_chat(self, post: ChatPost) -> int:
        row = await self.catalog.add_chat_message(
            ChatMessageRow(
                dedupe_key=post.dedupe_key,
                room_id=post.room_id,
                actor_type=post.actor.type,
                actor_id=post.actor.id,
                message=post.message,
                parameters=post.parameters,
                timestamp=int(time.time()),
            )
        )
        return row.message_id

    @activity.defn
    async def notify(self, post: NotificationPost) -> NotificationInfo:
        row = await self.catalog.add_notification(
            NotificationRow(
                dedupe_key=post.dedupe_key,
                room_id=post.room_id,
                recording_id=post.recording_id,
                user=post.user,
                moderators=post.moderators,
                subject=post.subject,
                message=post.message,
                file_id=post.file_id,
                timestamp=int(time.time()),
            )
        )
        return NotificationInfo(notification_id=row.notification_id, timestamp=row.timestamp)

    @activity.defn
    async def close_offer(self, close: CloseOffer) -> None:
        await self.catalog.close_notifications(close.end, recording_id=close.recording_id)

    @activity.defn
    async def share_to_chat(self, share: ShareToChat) -> int:
        """Posts the recording to the room's chat (once), then closes its notifications as shared."""
        message_id = await post_shared_file(self.catalog, share)
        if message_id is None:
            raise ApplicationError("The recording is gone.", type="RecordingGone", non_retryable=True)
        return message_id


async def post_shared_file(catalog: Catalog, share: ShareToChat) -> int | None:
    """Posts the recording's file to the room's chat (once: a repeat returns the same message) and closes its
    notifications as shared; None when the recording or its file is gone."""
    row = await catalog.get_recording(share.recording_id)
    if row is None or row.object_key is None:
        return None
    extension = row.object_key.rsplit(".", 1)[-1]
    mimetype = CONTENT_TYPES.get(extension, "application/octet-stream")
    message = await catalog.add_chat_message(
        ChatMessageRow(
            dedupe_key=f"{share.recording_id}:file_shared",
            room_id=share.room_id,
            actor_type=share.actor.type,
            actor_id=share.actor.id,
            message="file_shared",
            parameters={
                "file": {
                    "type": "file",
                    "id": str(file_id(row.recording_id)),
                    "name": row.filename,
                    "size": row.size,
                    "mimetype": mimetype,
                    "recordingId": row.recording_id,
                    "link": f"/api/v1/recordings/{row.recording_id}/media",
                },
                "metaData": {"mimeType": mimetype, "messageType": MESSAGE_TYPES.get(row.kind, "record-video")},
            }
            | ({} if share.actor.name is None else {"actorName": share.actor.name}),
            timestamp=int(time.time()),
        )
    )
    await catalog.close_notifications("shared", recording_id=share.recording_id)
    return message.message_id
