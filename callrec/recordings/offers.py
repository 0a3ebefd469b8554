"""The share-to-chat offer of a stored recording: its `record_file_stored` notification, taken up or dismissed in the
catalog by the API, and expired by reconcile after `CALLREC_SHARE_OFFER_EXPIRY_S`. The recording's workflow closes
once the file is stored; it does not stay open for the offer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.client import Client

from callrec.activities.notify import post_shared_file
from callrec.domain.notifications import FILE_STORED, ShareRequest, ShareResult, ShareToChat, file_id
from callrec.domain.settings import Settings
from callrec.domain.webhooks import WebhookEvent
from callrec.recordings import errors
from callrec.recordings.room_events import emit
from callrec.storage.catalog import Catalog
from callrec.storage.rows import NotificationRow


@dataclass
class Offers:
    settings: Settings
    catalog: Catalog
    temporal: Client

    async def share(self, recording_id: str, request: ShareRequest) -> ShareResult:
        """Posts the recording to the room's chat, once: taking an offer already taken returns the same message."""
        row = await self.catalog.get_recording(recording_id)
        if row is None:
            raise errors.OfferClosed(f"Recording '{recording_id}' no longer offers sharing")
        offer = await self._offer(row.room_id, recording_id, request)
        if offer.state not in ("open", "shared"):
            raise errors.OfferClosed(f"The offer was {offer.state}")
        if offer.state == "open" and self.expired(offer, int(time.time())):
            await self.catalog.close_notifications("expired", notification_id=offer.notification_id)
            raise errors.OfferClosed("The offer expired")
        share = ShareToChat(room_id=row.room_id, recording_id=recording_id, actor=request.actor)
        message_id = await post_shared_file(self.catalog, share)
        if message_id is None:
            raise errors.ShareFailed("The recording is gone.")
        if self.settings.webhooks:
            data = {"recordingId": recording_id, "roomId": row.room_id, "messageId": message_id}
            event = WebhookEvent(
                event="recordingShared",
                creation_date=int(time.time() * 1000),
                data=data | {"actor": request.actor.model_dump()},
                idempotency_key=f"{recording_id}:recordingShared:chat",
            )
            await emit(self.settings, self.temporal, event)
        return ShareResult(message_id=message_id)

    async def _offer(self, room_id: str, recording_id: str, request: ShareRequest) -> NotificationRow:
        if request.file_id == file_id(recording_id):
            for row in await self.catalog.room_notifications_at(room_id, request.timestamp):
                if row.recording_id == recording_id and row.subject == FILE_STORED:
                    return row
        raise errors.OfferClosed("No such notification")

    def expired(self, offer: NotificationRow, now_s: int) -> bool:
        return now_s >= offer.timestamp + self.settings.share_offer_expiry_s
