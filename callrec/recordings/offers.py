"""The share-to-chat offer of a stored recording: its `record_file_stored` notification, taken up or dismissed in the
catalog by the API, and expired by reconcile after `CALLREC_SHARE_OFFER_EXPIRY_S`. The recording's workflow closes
once the file is stored; it does not stay open for the offer."""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.client import Client

from callrec.activities.notify import post_shared_file
from callrec.domain.notifications import FILE_STORED, ShareRequest, ShareResult, ShareToChat
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

    async def share(self, room_id: str, request: ShareRequest) -> ShareResult:
        """Posts the recording the room's offer names (its notification's timestamp and file id) to the room's chat,
        once: taking an offer already taken returns the same message."""
        offer = await self._offer(room_id, request)
        if offer.state not in ("open", "shared"):
            raise errors.OfferClosed(f"The offer was {offer.state}")
        if offer.state == "open" and self.expired(offer, int(time.time())):
            await self.catalog.close_notifications("expired", notification_id=offer.notification_id)
            raise errors.OfferClosed("The offer expired")
        recording_id = offer.recording_id
        assert recording_id is not None  # `_offer` finds recordings' offers only
        share = ShareToChat(room_id=room_id, recording_id=recording_id, actor=request.actor)
        message_id = await post_shared_file(self.catalog, share)
        if message_id is None:
            raise errors.ShareFailed("The recording is gone.")
        if self.settings.webhooks:
            data = {"recordingId": recording_id, "roomId": room_id, "messageId": message_id}
            event = WebhookEvent(
                event="recordingShared",
                creation_date=int(time.time() * 1000),
                data=data | {"actor": request.actor.model_dump()},
                idempotency_key=f"{recording_id}:recordingShared:chat",
            )
            await emit(self.settings, self.temporal, event)
        return ShareResult(message_id=message_id)

    async def _offer(self, room_id: str, request: ShareRequest) -> NotificationRow:
        for row in await self.catalog.room_notifications_at(room_id, request.timestamp):
            if row.subject == FILE_STORED and row.file_id == request.file_id and row.recording_id is not None:
                return row
        raise errors.OfferClosed("No such notification")

    def expired(self, offer: NotificationRow, now_s: int) -> bool:
        return now_s >= offer.timestamp + self.settings.share_offer_expiry_s
