"""Nextcloud's notifications API, for Talk clients: `GET /ocs/v2.php/apps/notifications/api/v2/notifications` lists
the caller's notifications as Talk's Notifier renders them (subjects, messages, rich `call` and `file` parameters,
object types `recording` and `recording_information`, the actions "Share to chat" and "Dismiss notification"), and
`DELETE .../notifications/{id}` dismisses one for its reader. Credentials as for the rest of the API."""

from __future__ import annotations

from quart import Blueprint, Response, g

from callrec.api.auth import authenticate, principal
from callrec.api.baseurl import public_base
from callrec.api.notification_facts import callers_notifications, notification_facts
from callrec.api.ocs import ocs_response
from callrec.api.operations import Who, declare
from callrec.api.services import services
from callrec.api.talk.endpoints import TalkError, answer_errors_as_talk, talk_answers
from callrec.domain.talk_render import nextcloud_notification
from callrec.domain.tokens import Principal

blueprint = Blueprint("talk_notifications", __name__, url_prefix="/ocs/v2.php/apps/notifications/api/v2")
answer_errors_as_talk(blueprint)


def caller() -> Principal:
    g.principal = authenticate()
    who = principal()
    if who is None:
        raise TalkError(None, 401)
    return who


@blueprint.get("/notifications")
@declare("talkNotifications", "The caller's notifications (Nextcloud)", tag="Talk", security=Who.EVERYONE,
         responses=talk_answers())  # fmt: skip
async def list_notifications() -> Response:
    rows = await callers_notifications(caller())
    base = public_base()
    return ocs_response([nextcloud_notification(fact, base) for fact in await notification_facts(rows)])


@blueprint.delete("/notifications/<notification_id>")
@declare("talkDismissOne", "Dismiss one of the caller's notifications (Nextcloud)", tag="Talk",
         security=Who.EVERYONE, responses=talk_answers())  # fmt: skip
async def dismiss(notification_id: str) -> Response:
    """Only the caller's own: someone else's is answered 404, as one that does not exist."""
    who = caller()
    digits = notification_id.isascii() and notification_id.isdigit() and len(notification_id) <= 18  # fits 64 bits
    number = int(notification_id) if digits else None
    if number is None or not await callers_notifications(who, notification_id=number):
        raise TalkError(None, 404)
    await services().catalog.close_notifications("dismissed", notification_id=number)
    return ocs_response(None)
