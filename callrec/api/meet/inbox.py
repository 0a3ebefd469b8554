"""What the API tells people: their notifications and a room's chat log."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, jsonify, request

from callrec.api import errors
from callrec.api.auth import require
from callrec.api.meet.rooms import get_room_or_404
from callrec.api.meet.views import chat_message_view, notification_view
from callrec.api.services import services

blueprint = Blueprint("inbox", __name__)
Q = TypeVar("Q", bound=BaseModel)


class NotificationsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    roomId: str | None = Field(default=None, max_length=128, description="only this room's (API key only)")


class ChatQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lastKnownMessageId: int = Field(default=0, ge=0, le=2**63 - 1, description="the messages after this one")
    limit: int = Field(default=100, ge=1, le=200)


def query(model: type[Q]) -> Q:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise errors.validation_failed(exc) from exc


@blueprint.get("/notifications")
async def list_notifications() -> Response:
    """The caller's open notifications, newest first.

    A member sees its own in its room, and a moderator also the room's moderator notifications; a user
    token its own in every room; the API key all of them.
    """
    who = require()
    room_id = query(NotificationsQuery).roomId
    catalog = services().catalog
    if who.kind == "api_key":
        rows = await catalog.notifications(room_id=room_id)
    elif who.kind == "user":
        rows = await catalog.notifications(room_id=room_id, user=who.subject)
    else:
        rows = await catalog.notifications(room_id=who.room_id, user=who.subject, moderators=who.role == "moderator")
    return jsonify({"notifications": [notification_view(row) for row in rows]})


@blueprint.get("/rooms/<room_id>/chat")
async def room_chat(room_id: str) -> Response:
    """The room's chat log, oldest first: recordings started, stopped, failed and shared, as Talk posts them."""
    require(room_id=room_id)
    params = query(ChatQuery)
    await get_room_or_404(room_id)
    rows = await services().catalog.chat_messages(room_id, after=params.lastKnownMessageId, limit=params.limit)
    return jsonify({"messages": [chat_message_view(row) for row in rows]})
