"""User access tokens, minted by whoever holds the API key (an app's back end signing its users in)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response, jsonify

from callrec.api import schemas
from callrec.api.auth import api_key_only
from callrec.api.operations import (
    Answer,
    Who,
    declare,
    error,
)
from callrec.api.services import services
from callrec.domain import tokens
from callrec.domain.ids import PLAIN_ID

blueprint = Blueprint("users", __name__)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"userId": "alice", "role": "user"}]})
    userId: str = Field(pattern=PLAIN_ID, description="letters, digits, `_` and `-`, at most 128")
    role: Literal["admin", "user"] = "user"


@blueprint.post("/auth/token")
@declare(
    "createUserToken",
    "Create a user access token",
    tag="Auth",
    security=Who.API_KEY,
    responses={
        200: Answer("The token", schemas.UserToken),
        401: error("Not the API key (other credentials count as none)"),
    },
    body=TokenRequest,
    auth=api_key_only,
)
async def user_token(body: TokenRequest) -> Response:
    """A signed, expiring `Authorization: Bearer` token for a user with role `admin` or `user`."""
    settings = services().settings
    token = tokens.user_token(settings.token_key, body.userId, body.role, settings.user_token_ttl_s)
    expires = int((time.time() + settings.user_token_ttl_s) * 1000)
    return jsonify({"token": token, "role": body.role, "expiresAt": expires})
