"""What the API tells people: their notifications and a room's chat log."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.auth import require
from callrec.api.meet.rooms import get_room_or_404
from callrec.api.meet.views import chat_message_view, notification_view
from callrec.api.notification_facts import callers_notifications, notification_facts
from callrec.api.operations import (
    Answer,
    Who,
    declare,
    error,
)
from callrec.api.services import services
from callrec.api.validation import RoomId

blueprint = Blueprint("inbox", __name__)
Q = TypeVar("Q", bound=BaseModel)


class NotificationsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    roomId: RoomId | None = Field(default=None, description="only this room's (API key only)")


class ChatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lastKnownMessageId: int = Field(default=0, ge=0, le=2**63 - 1, description="the messages after this one")
    limit: int = Field(default=100, ge=1, le=200)


@blueprint.get("/notifications")
@declare(
    "getNotifications",
    "List the caller's notifications",
    tag="Notifications",
    security=Who.EVERYONE,
    responses={200: Answer("Open notifications, newest first", schemas.NotificationList), 422: error()},
    query=NotificationsQuery,
)
async def list_notifications(query: NotificationsQuery) -> Response:
    """The caller's open notifications, newest first.

    Addressed by authenticated identity, never by a name the caller chose: a user token's `userId`, a member
    token's `memberId` (minted with the token; its `participantName` is only a display name). A member sees its
    own in its room, and a moderator also the room's moderator notifications; a user token its own in every
    room; the API key all of them.
    """
    rows = await callers_notifications(require(), query.roomId)
    facts = await notification_facts(rows)
    return jsonify({"notifications": [notification_view(row, fact) for row, fact in zip(rows, facts, strict=True)]})


@blueprint.get("/rooms/<room_id>/chat")
@declare(
    "getRoomChat",
    "Read a room's chat log",
    tag="Rooms",
    security=Who.EVERYONE,
    responses={
        200: Answer("Messages, oldest first", schemas.ChatLog),
        403: error(),
        404: error("No such room"),
        422: error(),
    },
    query=ChatQuery,
    auth=lambda room_id: require(room_id=room_id),
)
async def room_chat(room_id: str, query: ChatQuery) -> Response:
    """The room's chat log, oldest first: recordings started, stopped, failed and shared, as Talk posts them."""
    params = query
    await get_room_or_404(room_id)
    rows = await services().catalog.chat_messages(room_id, after=params.lastKnownMessageId, limit=params.limit)
    viewer = require().subject
    return jsonify({"messages": [chat_message_view(row, viewer) for row in rows]})
