"""The share-to-chat offer's workflow handlers, for runs from before the offer moved to the catalog.

Runs started since `OFFER_IN_CATALOG` close once the file is stored: the API takes the offer up or dismisses it in the
catalog (`RecordingsService.share_to_chat`, `dismiss`) and reconcile expires it. Runs from before kept the offer open
in the workflow until it was shared, dismissed or expired; these handlers serve them (and replay their histories).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from callrec.domain import notifications
    from callrec.domain.notifications import DismissRequest, NotificationInfo, OfferEnd, ShareRequest, ShareResult
    from callrec.workflows.effects import RecordingEffects, reason_of


class OfferHandlers(RecordingEffects):
    offer: NotificationInfo | None
    offer_end: OfferEnd | None
    shared: ShareResult | None

    @workflow.update
    async def share_to_chat(self, request: ShareRequest) -> ShareResult:
        """Posts the recording to the room's chat; asking again returns the same message."""
        self.offer_end = "shared"
        if self.shared is None:
            try:
                self.shared = await self._share(request.actor)
            except ActivityError as err:
                raise ApplicationError(reason_of(err), type="ShareFailed") from err
        return self.shared

    @share_to_chat.validator
    def _validate_share(self, request: ShareRequest) -> None:
        self._check_offer(request.timestamp, "shared")
        if request.file_id != notifications.file_id(self.input.recording_id):
            raise ApplicationError("No such file", type="WrongFile")

    @workflow.update
    async def dismiss(self, request: DismissRequest) -> None:
        if self.offer_end is None:
            self.offer_end = "dismissed"
            await self._close_offer("dismissed")

    @dismiss.validator
    def _validate_dismiss(self, request: DismissRequest) -> None:
        self._check_offer(request.timestamp, "dismissed")

    def _check_offer(self, timestamp: int, allowed_end: OfferEnd) -> None:
        if self.offer is None or self.offer.timestamp != timestamp:
            raise ApplicationError("No such notification", type="WrongFile")
        if self.offer_end not in (None, allowed_end):
            raise ApplicationError(f"The offer was {self.offer_end}", type="OfferClosed")
