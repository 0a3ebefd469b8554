"""One declaration per endpoint: what it takes, who may call it and what it answers.

A route declares itself with `@declare(...)` right under its `@blueprint.<method>(...)`. The declaration
validates what the route takes (the JSON body as `body`, the query string as `query`, after the `auth` check
so that a caller who may not call it learns nothing from validation) and is what `callrec.api.openapi` builds
the document from: a route without a declaration fails the document's build.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from callrec.api import schemas
from callrec.api.auth import API_KEY_HEADER, MEMBER_TOKEN_HEADER
from callrec.api.errors import malformed_body, validation_failed
from callrec.api.fields import FIELDS_HEADER, FIELDS_PARAM
from callrec.api.guard import NESTED_TOO_DEEPLY
from callrec.api.validation import check_recording_id, check_room_id
from callrec.domain.recording import RECORDING_ID
from callrec.media.sniff import CONTENT_TYPES

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)
DECLARATION = "__callrec_operation__"

# ------------------------------------------------------------------------- security

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
        "description": "The service's API key: full access. Wins over any other credential sent with it.",
    },
    "accessTokenHeader": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user access token from `POST /api/v1/auth/token` (role `admin` or `user`).",
    },
    "roomMemberTokenHeader": {
        "type": "apiKey",
        "in": "header",
        "name": MEMBER_TOKEN_HEADER,
        "description": "A room member token from `POST /api/v1/rooms/{roomId}/members/token`: one room, "
        "the permissions of its role (moderator or speaker).",
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "`CALLREC_METRICS_TOKEN`, what Prometheus sends to read `GET /metrics`.",
    },
    "publishToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A WHIP publish token from `POST /api/v1/rooms/{roomId}/publish-token`: one participant "
        "publishing into one room.",
    },
}
Security = list[dict[str, list[str]]]


class Who:
    """Who may call an operation, as OpenAPI security requirements (`callrec.api.auth` enforces it)."""

    API_KEY: Security = [{"apiKeyHeader": []}]
    ADMINS: Security = API_KEY + [{"accessTokenHeader": []}]  # user tokens need the `admin` role
    APPS_AND_USERS: Security = API_KEY + [{"accessTokenHeader": []}]
    APPS_AND_MEMBERS: Security = API_KEY + [{"roomMemberTokenHeader": []}]
    EVERYONE: Security = ADMINS + [{"roomMemberTokenHeader": []}]
    # `{}`: no credential needed, with the recording's secret in `recordingSecret` (see `meet.access`).
    EVERYONE_OR_SECRET: Security = EVERYONE + [{}]
    PUBLISHERS: Security = [{"publishToken": []}]
    # The metrics token, or nothing at all when CALLREC_METRICS_PUBLIC is true.
    METRICS: Security = [{"metricsToken": []}, {}]
    # Signed another way (the recorder's HMAC, LiveKit's JWT), or open to anyone.
    NONE: Security = []


# ------------------------------------------------------------------------- parameters


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


FIELDS = (
    query(FIELDS_PARAM, {"type": "string"}, "Comma-separated recording fields to return; the others are left out."),
    header(FIELDS_HEADER, {"type": "string"}, f"Like `{FIELDS_PARAM}`; when both are sent, the union counts."),
)
RECORDING_SECRET = query(
    "recordingSecret",
    {"type": "string"},
    "The recording's public secret (lets anyone in when the room's `publicAccess` allows it, else any signed-in "
    "caller) or its private secret (any signed-in caller); any other value is a 400. From `GET .../url`.",
)
RECORDING_IDS = {
    "name": "recordingIds",
    "in": "query",
    "required": True,
    "description": "Comma-separated recording ids (the parameter may also repeat); blanks and repeats are dropped; "
    "at most 100 (422 beyond).",
    "schema": {
        "type": "array",
        "minItems": 1,
        "maxItems": 100,
        "items": {"type": "string", "pattern": RECORDING_ID.pattern},
    },
    "style": "form",
    "explode": False,
}
RANGE = header(
    "Range",
    {"type": "string", "pattern": "^bytes=[0-9]+-[0-9]*$"},
    "One byte range, `bytes=start-end` or `bytes=start-` (to the end); anything else (a suffix range, several "
    "ranges) is a 422, as in OpenVidu Meet. A start beyond the file is a 416, an end before the start serves "
    "the whole file, an end beyond the file is the last byte.",
)
QUERY_DOCS: dict[str, str] = {
    "maxItems": "Page size; above 100 counts as 100.",
    "nextPageToken": "The previous page's `pagination.nextPageToken`; only valid with the same filters and sort.",
    "roomId": "Only this room's recordings (a member token always sees its own room's only).",
    "roomName": "Only recordings of rooms with this name (see `roomNameMatchMode`).",
    "roomNameMatchMode": "How `roomName` matches: the whole name, its start, or any part.",
    "roomNameCaseInsensitive": "Whether `roomName` ignores case.",
    "status": "Only recordings in this status.",
    "sortField": "What the listing is sorted by (then by recordingId).",
    "sortOrder": "Sort direction.",
    "fields": FIELDS[0]["description"],
    "withRecordings": "If it has recordings: `fail` (409), `force` (delete them too), `close` (keep them, close it).",
    "privateAccess": "Whether the URL carries the private secret (any signed-in caller) instead of the public one.",
}

# ------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class Answer:
    """One response: a JSON model, another JSON schema, binary content, or nothing."""

    description: str | None = None
    model: type[BaseModel] | None = None
    one_of: tuple[type[BaseModel], ...] = ()
    binary: tuple[str, ...] = ()
    headers: Mapping[str, dict[str, Any]] = field(default_factory=dict)


def error(description: str | None = None, **headers: dict[str, Any]) -> Answer:
    return Answer(description, schemas.Error, headers=headers)


def recording_answer(description: str) -> Answer:
    return Answer(description, schemas.Recording)


def header_doc(description: str, *, required: bool = True, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


LOCATION = header_doc(
    "The resource's absolute URL: on `CALLREC_PUBLIC_URL` if set, else on the request's scheme and host "
    "(`X-Forwarded-Proto` / `X-Forwarded-Host` from `CALLREC_TRUSTED_PROXIES` only)."
)
MEDIA_TYPES = (*dict.fromkeys(CONTENT_TYPES.values()), "application/octet-stream")
FILE_HEADERS = {
    "Content-Length": header_doc("Bytes in this response.", schema={"type": "integer"}),
    "Cache-Control": header_doc("Caching rules."),
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    tag: str
    security: Security
    responses: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    parameters: Sequence[dict[str, Any]] = ()
    notes: str | None = None
    head: str | None = None  # the operationId of the route's HEAD, when it is documented (a GET's headers, no body)


def declare(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    security: Security,
    responses: Mapping[int, Answer],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    parameters: Sequence[dict[str, Any]] = (),
    notes: str | None = None,
    auth: Callable[..., object] | None = None,
    head: str | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Declares the route below: `body` and `query` are validated (after `auth`, called with the route's path
    arguments) and passed to it by name. The path's `room_id` / `recording_id` are checked and sanitised first.
    `head` documents the route's HEAD under that operationId (the same answers' status and headers, no content)."""
    operation = Operation(operation_id, summary, tag, security, responses, body, query, parameters, notes, head)

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(view)
        async def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            path_ids(operation_id, kwargs)  # before `auth`, which reads the (sanitised) room of the path
            if auth is not None:
                auth(**kwargs)
            if body is not None:
                kwargs["body"] = await json_body(body)
            if query is not None:
                kwargs["query"] = query_args(query)
            return await view(*args, **kwargs)

        setattr(checked, DECLARATION, operation)
        return checked

    return decorate


# Meet reports a malformed recording id of these paths as `params.recordingId` (the others as `recordingId`).
PARAMS_RECORDING_ID = frozenset({"getRecording", "getRecordingMedia", "getRecordingUrl"})


def path_ids(operation_id: str, kwargs: dict[str, Any]) -> None:
    """Room and recording ids of the REST API's paths, checked and sanitised as Meet does (`callrec.api.validation`):
    422 with Meet's message when malformed, so that a malformed id is never a 404. (Pages such as
    `/rooms/{roomId}/publish` are not Meet's and keep their own rule.)"""
    if not request.path.startswith("/api/v1/"):
        return
    if isinstance(kwargs.get("room_id"), str):
        kwargs["room_id"] = check_room_id(kwargs["room_id"])
    if isinstance(kwargs.get("recording_id"), str):
        field = "params.recordingId" if operation_id in PARAMS_RECORDING_ID else "recordingId"
        kwargs["recording_id"] = check_recording_id(kwargs["recording_id"], field)


def declaration(view: Callable[..., Any]) -> Operation | None:
    found: Operation | None = getattr(view, DECLARATION, None)
    return found


async def json_body(model: type[M]) -> M:
    """Malformed JSON is a 400, a body that does not fit the model a 422 with details."""
    raw = await request.get_data()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:  # also UnicodeDecodeError
        raise malformed_body() from exc
    except RecursionError as exc:
        raise malformed_body(NESTED_TOO_DEEPLY) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from exc


def query_args(model: type[M]) -> M:
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise validation_failed(exc) from exc
