"""The API's OpenAPI 3.1 document, built from the app itself, served at `GET /openapi.json`; a docs page at `/docs`.

What comes from the code, so it cannot drift:

* paths and methods: from `app.url_map`, by endpoint (an operation whose route is gone fails the build);
* request bodies and model-backed query parameters: the pydantic models the routes validate with;
* response bodies: `callrec.api.schemas`;
* descriptions: the view functions' docstrings, after the summaries written here.

What is written here, route by route: summaries, security, the other parameters and every status a route
answers with. `tests/e2e/test_openapi.py` checks the document against `app.url_map` (a route without an
operation fails) and runs schemathesis against a live stack. The document is built once per app.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from quart import Blueprint, Quart, Response, current_app

from callrec.api.auth import API_KEY_HEADER, MEMBER_TOKEN_HEADER
from callrec.api.fields import FIELDS_HEADER, FIELDS_PARAM
from callrec.api.meet import inbox, recordings, rooms, schemas, sharing, users
from callrec.domain.recording import RECORDING_ID
from callrec.media.sniff import CONTENT_TYPES

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
_CACHE_KEY = "callrec.openapi"

blueprint = Blueprint("openapi", __name__)

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
}
Security = list[dict[str, list[str]]]
API_KEY: Security = [{"apiKeyHeader": []}]
ADMINS: Security = API_KEY + [{"accessTokenHeader": []}]  # user tokens need the `admin` role
APPS_AND_USERS: Security = API_KEY + [{"accessTokenHeader": []}]
APPS_AND_MEMBERS: Security = API_KEY + [{"roomMemberTokenHeader": []}]
EVERYONE: Security = ADMINS + [{"roomMemberTokenHeader": []}]
# `{}`: no credential needed, with the recording's secret in `recordingSecret` (see `callrec.api.access`).
EVERYONE_OR_SECRET: Security = EVERYONE + [{}]
NONE: Security = []

# ------------------------------------------------------------------------- parameters

PATH_PARAMETERS: dict[str, tuple[str, dict[str, Any], str]] = {
    # the route's argument: (the name in the document, its schema, its description)
    "room_id": (
        "roomId",
        {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 128},
        "The room's id, as `POST /api/v1/rooms` returned it.",
    ),
    "recording_id": (
        "recordingId",
        {"type": "string", "pattern": RECORDING_ID.pattern, "maxLength": 512},
        "The recording's id: `{roomId}--EG_{egressId}--{uid}`.",
    ),
}


def query(name: str, schema: dict[str, Any], description: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


FIELDS = (
    query(FIELDS_PARAM, {"type": "string"}, "Comma-separated recording fields to return; the others are left out."),
    header(FIELDS_HEADER, {"type": "string"}, f"Like `{FIELDS_PARAM}`, which wins when both name a field."),
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
    "description": "Comma-separated recording ids (the parameter may also repeat); blanks and repeats are dropped.",
    "schema": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": RECORDING_ID.pattern}},
    "style": "form",
    "explode": False,
}
RANGE = header(
    "Range",
    {"type": "string", "pattern": "^bytes=[0-9]{0,15}-[0-9]{0,15}$"},
    "One byte range (`bytes=start-end`, `bytes=start-`, `bytes=-suffix`); anything else serves the whole file.",
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

DESCRIPTIONS: dict[int, str] = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No content",
    206: "Partial content",
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "The caller may not do this",
    404: "Not found",
    409: "Conflict with the resource's state",
    413: "Request body too large (more than 1 MiB)",
    416: "Range not satisfiable",
    422: "Invalid request: `details` names each field",
    500: "Unexpected error; see the server log",
    503: "A backing service is unavailable; try again shortly",
}


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


def header_doc(description: str, *, required: bool = True, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


LOCATION = header_doc("The new resource's path.")
MEDIA_TYPES = (*dict.fromkeys(CONTENT_TYPES.values()), "application/octet-stream")
FILE_HEADERS = {
    "Content-Length": header_doc("Bytes in this response.", schema={"type": "integer"}),
    "Cache-Control": header_doc("Caching rules."),
}


@dataclass(frozen=True)
class Operation:
    endpoint: str
    operation_id: str
    summary: str
    tag: str
    security: Security
    responses: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    query_model: type[BaseModel] | None = None
    parameters: Sequence[dict[str, Any]] = ()
    notes: str | None = None


def _recording_answer(description: str) -> Answer:
    return Answer(description, schemas.Recording)


OPERATIONS: tuple[Operation, ...] = (
    # ---- auth
    Operation(
        "api_v1.users.user_token",
        "createUserToken",
        "Create a user access token",
        "Auth",
        API_KEY,
        {200: Answer("The token", schemas.UserToken), 403: error("Only the API key may create user tokens")},
        body=users.TokenRequest,
    ),
    # ---- rooms
    Operation(
        "api_v1.rooms.create_room",
        "createRoom",
        "Create a room",
        "Rooms",
        ADMINS,
        {201: Answer("The room, with its secrets", schemas.Room, headers={"Location": LOCATION}), 403: error()},
        body=rooms.CreateRoom,
    ),
    Operation(
        "api_v1.rooms.list_rooms",
        "getRooms",
        "List rooms",
        "Rooms",
        APPS_AND_USERS,
        {
            200: Answer("A page of rooms", schemas.RoomList),
            403: error("Member tokens may not list rooms"),
            422: error(),
        },
        parameters=(
            query("maxItems", {"type": "integer", "minimum": 1, "default": 10}, QUERY_DOCS["maxItems"]),
            query("nextPageToken", {"type": "string"}, QUERY_DOCS["nextPageToken"]),
        ),
    ),
    Operation(
        "api_v1.rooms.get_room",
        "getRoom",
        "Get a room",
        "Rooms",
        EVERYONE,
        {200: Answer("The room (secrets for admins only)", schemas.Room), 403: error(), 404: error("No such room")},
    ),
    Operation(
        "api_v1.rooms.delete_room",
        "deleteRoom",
        "Delete or close a room",
        "Rooms",
        ADMINS,
        {
            200: Answer("Deleted (with its recordings), or closed", one_of=(schemas.RoomDeleted, schemas.RoomClosed)),
            403: error(),
            404: error("No such room"),
            409: error("A recording is in progress, the room has recordings (`fail`), or some could not be deleted"),
            422: error(),
        },
        query_model=rooms.DeleteRoomQuery,
    ),
    Operation(
        "api_v1.rooms.member_token",
        "createRoomMemberToken",
        "Exchange a room secret for a member token",
        "Rooms",
        NONE,
        {
            200: Answer("The token, its role and permissions", schemas.MemberToken),
            400: error("Malformed body, or the secret is not one of the room's"),
            404: error("No such room"),
            409: error("The room is closed"),
        },
        body=rooms.MemberTokenRequest,
        notes="No credential needed: the room's moderator or speaker secret stands in for one.",
    ),
    Operation(
        "api_v1.rooms.get_room_config",
        "getRoomConfig",
        "Get a room's config",
        "Rooms",
        EVERYONE,
        {200: Answer("The config", schemas.RoomConfig), 403: error(), 404: error("No such room")},
    ),
    Operation(
        "api_v1.rooms.put_room_config",
        "updateRoomConfig",
        "Update a room's config",
        "Rooms",
        ADMINS,
        {
            200: Answer("The config now", schemas.RoomConfig),
            403: error(),
            404: error("No such room"),
            409: error("A recording runs and the change would alter its settings"),
        },
        body=rooms.UpdateRoomConfig,
    ),
    Operation(
        "api_v1.rooms.get_call",
        "getRoomCall",
        "Get a room's call",
        "Rooms",
        EVERYONE,
        {200: Answer("The call", schemas.Call), 403: error(), 404: error("No such room, or no active call")},
    ),
    Operation(
        "api_v1.rooms.put_call",
        "putRoomCall",
        "Set a room's call participants",
        "Rooms",
        ADMINS,
        {
            200: Answer("The call", schemas.Call),
            403: error(),
            404: error("No such room"),
            409: error("The room is closed"),
        },
        body=rooms.PutCall,
        notes="What the conferencing side reports: who is in the call now. Starts the call if there is none.",
    ),
    Operation(
        "api_v1.rooms.put_lobby",
        "putRoomLobby",
        "Turn a room's lobby on or off",
        "Rooms",
        ADMINS,
        {200: Answer("The lobby now", schemas.Lobby), 403: error(), 404: error("No such room")},
        body=rooms.PutLobby,
    ),
    Operation(
        "api_v1.inbox.room_chat",
        "getRoomChat",
        "Read a room's chat log",
        "Rooms",
        EVERYONE,
        {
            200: Answer("Messages, oldest first", schemas.ChatLog),
            403: error(),
            404: error("No such room"),
            422: error(),
        },
        query_model=inbox.ChatQuery,
    ),
    Operation(
        "api_v1.inbox.list_notifications",
        "getNotifications",
        "List the caller's notifications",
        "Notifications",
        EVERYONE,
        {200: Answer("Open notifications, newest first", schemas.NotificationList), 422: error()},
        query_model=inbox.NotificationsQuery,
    ),
    Operation(
        "api_v1.rooms.end_call",
        "endRoomCall",
        "End a room's call",
        "Rooms",
        ADMINS,
        {204: Answer("Ended"), 403: error(), 404: error("No such room, or no active call")},
    ),
    # ---- recordings
    Operation(
        "api_v1.recordings.start_recording",
        "startRecording",
        "Start a recording",
        "Recordings",
        APPS_AND_MEMBERS,
        {
            201: Answer("Started (`active`)", schemas.Recording, headers={"Location": LOCATION}),
            403: error("No `recordingControl` permission, another room's token, or recording is disabled"),
            404: error("No such room"),
            409: error("The room has no participants, or is already being recorded"),
            503: error("The recording could not start, or the workflow service is unavailable"),
        },
        body=recordings.StartRecording,
        parameters=FIELDS,
    ),
    Operation(
        "api_v1.recordings.list_recordings",
        "getRecordings",
        "List recordings",
        "Recordings",
        EVERYONE,
        {200: Answer("A page of recordings", schemas.RecordingList), 403: error(), 422: error()},
        query_model=recordings.ListQuery,
        parameters=FIELDS[1:],
    ),
    Operation(
        "api_v1.recordings.get_recording",
        "getRecording",
        "Get a recording",
        "Recordings",
        EVERYONE_OR_SECRET,
        {
            200: _recording_answer("The recording"),
            400: error("`recordingSecret` is not one of the recording's secrets"),
            403: error(),
            404: error("No such recording"),
        },
        parameters=(RECORDING_SECRET, *FIELDS),
    ),
    Operation(
        "api_v1.recordings.stop_recording",
        "stopRecording",
        "Stop a recording",
        "Recordings",
        APPS_AND_MEMBERS,
        {
            202: _recording_answer("Stopping: the recording is being stored"),
            403: error(),
            404: error("No such recording"),
            409: error("The recording is not active"),
        },
        parameters=FIELDS,
    ),
    Operation(
        "api_v1.files.delete_recording",
        "deleteRecording",
        "Delete a recording",
        "Recordings",
        EVERYONE,
        {
            200: Answer("Deleted", schemas.Message),
            403: error(),
            404: error("No such recording"),
            409: error("The recording is in progress"),
            503: error("The object store is unavailable"),
        },
    ),
    Operation(
        "api_v1.files.bulk_delete_recordings",
        "bulkDeleteRecordings",
        "Delete recordings",
        "Recordings",
        EVERYONE,
        {
            200: Answer("All deleted", schemas.BulkDeleteResult),
            400: Answer("Some could not be deleted (the others were)", schemas.BulkDeleteResult),
            403: error(),
            422: error("No recording id given"),
        },
        parameters=(RECORDING_IDS,),
    ),
    Operation(
        "api_v1.files.download_recording",
        "downloadRecording",
        "Download a recording",
        "Recordings",
        EVERYONE_OR_SECRET,
        {
            200: Answer(
                "The file, as an attachment",
                binary=MEDIA_TYPES,
                headers={"Content-Disposition": header_doc("`attachment` with the recording's filename.")}
                | FILE_HEADERS,
            ),
            400: error("`recordingSecret` is not one of the recording's secrets"),
            403: error(),
            404: error("No such recording, or its media is missing"),
            409: error("The recording is not complete"),
        },
        parameters=(RECORDING_SECRET,),
    ),
    Operation(
        "api_v1.files.download_recordings",
        "downloadRecordings",
        "Download recordings as a ZIP",
        "Recordings",
        EVERYONE,
        {
            200: Answer(
                "A ZIP (stored, not compressed) of the playable recordings within reach",
                binary=("application/zip",),
                headers={
                    "Content-Disposition": header_doc('`attachment; filename="recordings.zip"`.'),
                    "X-Skipped-Recordings": header_doc(
                        "Comma-separated, URL-encoded ids left out of the ZIP.", required=False
                    ),
                }
                | FILE_HEADERS,
            ),
            400: error("None of the recordings is available"),
            403: error(),
            422: error("No recording id given"),
        },
        parameters=(RECORDING_IDS,),
    ),
    Operation(
        "api_v1.media.get_media",
        "getRecordingMedia",
        "Get a recording's media",
        "Recordings",
        EVERYONE_OR_SECRET,
        {
            200: Answer(
                "The whole file",
                binary=MEDIA_TYPES,
                headers={"Accept-Ranges": header_doc("`bytes`.")} | FILE_HEADERS,
            ),
            206: Answer(
                "The requested range",
                binary=MEDIA_TYPES,
                headers={
                    "Accept-Ranges": header_doc("`bytes`."),
                    "Content-Range": header_doc("`bytes start-end/size`."),
                }
                | FILE_HEADERS,
            ),
            400: error("`recordingSecret` is not one of the recording's secrets"),
            403: error(),
            404: error("No such recording, or its media is missing"),
            409: error("The recording is not complete"),
            416: error("Range not satisfiable", **{"Content-Range": header_doc("`bytes */size`.")}),
        },
        parameters=(RECORDING_SECRET, RANGE),
    ),
    Operation(
        "api_v1.sharing.recording_url",
        "getRecordingUrl",
        "Get a shareable URL of a recording",
        "Recordings",
        EVERYONE,
        {
            200: Answer("The URL", schemas.RecordingUrl),
            403: error(),
            404: error("No such recording"),
            422: error(),
        },
        query_model=sharing.UrlQuery,
    ),
    # ---- health
    Operation(
        "health.health",
        "getHealth",
        "Health of the API and what it depends on",
        "Health",
        NONE,
        {200: Answer("Everything is up", schemas.Health), 503: Answer("Something is down", schemas.Health)},
    ),
)

# ------------------------------------------------------------------------- schemas


def _walk_refs(value: Any, renames: Mapping[str, str]) -> Any:
    """`value` with `$ref`s to renamed components pointing at the new names."""
    if isinstance(value, dict):
        out = {key: _walk_refs(item, renames) for key, item in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_REF.format(model="")):
            name = ref.removeprefix(SCHEMA_REF.format(model=""))
            out["$ref"] = SCHEMA_REF.format(model=renames.get(name, name))
        return out
    if isinstance(value, list):
        return [_walk_refs(item, renames) for item in value]
    return value


def _generate(models: Sequence[type[BaseModel]], mode: JsonSchemaMode) -> tuple[dict[type[BaseModel], Any], Any]:
    refs, top = models_json_schema([(model, mode) for model in models], ref_template=SCHEMA_REF)
    return {model: refs[(model, mode)] for model in models}, top.get("$defs", {})


@dataclass
class Components:
    """Component schemas, and the schema (a `$ref`) of each model put in."""

    schemas: dict[str, Any] = field(default_factory=dict)
    refs: dict[type[BaseModel], dict[str, Any]] = field(default_factory=dict)

    def add(self, models: Sequence[type[BaseModel]], mode: JsonSchemaMode, suffix: str) -> None:
        """Adds `models` (and the models they use); a name taken by a different schema gets `suffix`."""
        refs, defs = _generate(models, mode)
        renames: dict[str, str] = {}
        while True:  # a schema that refers to a renamed one differs too: until nothing more is renamed
            clashes = {
                name: name + suffix
                for name, schema in defs.items()
                if name in self.schemas and self.schemas[name] != _walk_refs(schema, renames)
            }
            if clashes == renames:
                break
            renames = clashes
        for name, schema in defs.items():
            new = renames.get(name, name)
            if new in self.schemas and self.schemas[new] != _walk_refs(schema, renames):
                raise ValueError(f"two different schemas named {new!r}")
            self.schemas[new] = _walk_refs(schema, renames)
        self.refs |= {model: _walk_refs(ref, renames) for model, ref in refs.items()}

    def inline(self, model: type[BaseModel]) -> dict[str, Any]:
        """A model's own schema, taken out of the components (for query parameters)."""
        name = str(self.refs[model]["$ref"]).removeprefix(SCHEMA_REF.format(model=""))
        schema: dict[str, Any] = self.schemas.pop(name)
        return schema


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the `null` branch of `T | None` (leaving it out is how to say None)."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    if schema.get("default", ...) is None:
        del schema["default"]
    branches = schema.pop("anyOf", None)
    if branches is None:
        return schema
    kept = [branch for branch in branches if branch != {"type": "null"}]
    return schema | (kept[0] if len(kept) == 1 else {"anyOf": kept})


def _model_query(schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", ()))
    return [
        query(name, _not_null(prop), QUERY_DOCS.get(name, prop.get("description", "")), required=name in required)
        for name, prop in schema.get("properties", {}).items()
    ]


# ------------------------------------------------------------------------- the document

_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _route(app: Quart, endpoint: str) -> tuple[str, list[str], list[str]]:
    """The rule of `endpoint`: its path in OpenAPI syntax, its methods, and its arguments."""
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint]
    if len(rules) != 1:
        raise LookupError(f"the OpenAPI document describes {endpoint!r}, which has {len(rules)} routes")
    rule = rules[0]
    args = _RULE_ARG.findall(rule.rule)
    path = _RULE_ARG.sub(lambda m: "{" + PATH_PARAMETERS[m.group(1)][0] + "}", rule.rule)
    methods = sorted(m.lower() for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
    return path, methods, args


def _content(components: Components, answer: Answer) -> dict[str, Any] | None:
    if answer.binary:
        return {media: {"schema": {"type": "string", "format": "binary"}} for media in answer.binary}
    if answer.model is not None:
        return {"application/json": {"schema": components.refs[answer.model]}}
    if answer.one_of:
        return {"application/json": {"schema": {"oneOf": [components.refs[m] for m in answer.one_of]}}}
    return None


def _responses(op: Operation, components: Components, *, api: bool) -> dict[str, Any]:
    answers = dict(op.responses)
    if api:
        answers.setdefault(401, error())
    if op.body is not None:
        answers.setdefault(400, error("Malformed JSON body"))
        answers.setdefault(413, error())
        answers.setdefault(422, error())
    answers.setdefault(500, error())
    out: dict[str, Any] = {}
    for status in sorted(answers):
        answer = answers[status]
        response: dict[str, Any] = {"description": answer.description or DESCRIPTIONS[status]}
        if answer.headers:
            response["headers"] = dict(answer.headers)
        if (content := _content(components, answer)) is not None:
            response["content"] = content
        out[str(status)] = response
    return out


def _description(app: Quart, op: Operation) -> str | None:
    docstring = inspect.getdoc(app.view_functions[op.endpoint])
    parts = [part for part in (op.notes, docstring) if part]
    return "\n\n".join(parts) or None


def build_document(app: Quart) -> dict[str, Any]:
    components = Components()
    response_models = [*schemas.RESPONSE_MODELS]
    components.add(response_models, "serialization", "Output")
    request_models = [op.body for op in OPERATIONS if op.body is not None]
    query_models = [op.query_model for op in OPERATIONS if op.query_model is not None]
    components.add([*dict.fromkeys(request_models + query_models)], "validation", "Request")
    query_schemas = {model: components.inline(model) for model in dict.fromkeys(query_models)}

    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        path, methods, args = _route(app, op.endpoint)
        api = path.startswith("/api/")
        parameters = [
            {
                "name": PATH_PARAMETERS[arg][0],
                "in": "path",
                "required": True,
                "description": PATH_PARAMETERS[arg][2],
                "schema": PATH_PARAMETERS[arg][1],
            }
            for arg in args
        ]
        if op.query_model is not None:
            parameters += _model_query(query_schemas[op.query_model])
        parameters += [dict(p) for p in op.parameters]
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "security": op.security,
        }
        if (description := _description(app, op)) is not None:
            operation["description"] = description
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            body_schema = components.refs[op.body]
            required = bool(op.body.model_json_schema().get("required"))
            operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": body_schema}}}
        operation["responses"] = _responses(op, components, api=api)
        for method in methods:
            if method in paths.setdefault(path, {}):
                raise ValueError(f"{method.upper()} {path} is described twice")
            paths[path][method] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "callrec API",
            "version": _version(),
            "description": "Durable call recording: rooms, calls and recordings (OpenVidu Meet style). "
            "Errors are `{error, message, details?}`.",
        },
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in OPERATIONS)],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(components.schemas.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def _version() -> str:
    try:
        return importlib.metadata.version("callrec")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def document(app: Quart) -> dict[str, Any]:
    """The app's document, built on first use (once every blueprint is registered) and kept."""
    cached: dict[str, Any] | None = app.extensions.get(_CACHE_KEY)
    if cached is None:
        cached = app.extensions[_CACHE_KEY] = build_document(app)
    return cached


# ------------------------------------------------------------------------- routes


@blueprint.get("/openapi.json")
async def openapi_json() -> Response:
    extensions = current_app.extensions
    text: str | None = extensions.get(_CACHE_KEY + ".json")
    if text is None:
        text = extensions[_CACHE_KEY + ".json"] = json.dumps(document(current_app))
    return Response(text, content_type="application/json")


@blueprint.get("/docs")
async def docs() -> Response:
    return Response(DOCS_PAGE, content_type="text/html; charset=utf-8")


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>callrec API</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 960px; margin: 2em auto; padding: 0 1em; color: #222; }
  h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
  details { border: 1px solid #ddd; border-radius: 4px; margin: .4em 0; padding: .3em .6em; }
  summary { cursor: pointer; }
  code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
  pre { background: #f6f6f6; padding: .6em; overflow: auto; white-space: pre-wrap; }
  .m { display: inline-block; min-width: 4.5em; font-weight: bold; text-transform: uppercase; }
  .get { color: #1a6; } .post { color: #26b; } .put { color: #b70; } .delete { color: #c33; }
  table { border-collapse: collapse; margin: .3em 0; }
  td, th { border: 1px solid #ddd; padding: .2em .5em; text-align: left; vertical-align: top; }
</style>
</head>
<body>
<h1>callrec API</h1>
<p>The machine-readable document: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<div id="ops">Loading&hellip;</div>
<script>
"use strict";
const ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"};
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ENTITIES[c]);
const refName = (s) => (s && s.$ref ? s.$ref.split("/").pop() : "");
function schemaText(s) {
  if (!s) return "";
  if (s.$ref) return refName(s);
  if (s.oneOf) return s.oneOf.map(schemaText).join(" | ");
  if (s.type === "array") return schemaText(s.items) + "[]";
  return (s.enum ? s.enum.join(" | ") : s.type || "") + (s.format ? " (" + s.format + ")" : "");
}
function render(doc) {
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (byTag[(op.tags || ["other"])[0]] ||= []).push([method, path, op]);
    }
  }
  let html = "";
  for (const [tag, ops] of Object.entries(byTag)) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const [method, path, op] of ops) {
      const security = (op.security || []).map((s) => Object.keys(s).join(" + ") || "none").join(", ") || "none";
      html += "<details><summary><span class='m " + method + "'>" + method + "</span> <code>" + esc(path) +
        "</code> &mdash; " + esc(op.summary) + "</summary>";
      if (op.description) html += "<pre>" + esc(op.description) + "</pre>";
      html += "<p><b>operationId</b> <code>" + esc(op.operationId) + "</code>; <b>credentials</b>: " +
        esc(security) + "</p>";
      if (op.parameters) {
        html += "<table><tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>";
        for (const p of op.parameters) {
          html += "<tr><td><code>" + esc(p.name) + "</code>" + (p.required ? " *" : "") + "</td><td>" + esc(p.in) +
            "</td><td>" + esc(schemaText(p.schema)) + "</td><td>" + esc(p.description) + "</td></tr>";
        }
        html += "</table>";
      }
      if (op.requestBody) {
        const body = Object.entries(op.requestBody.content).map(([t, c]) => t + ": " + schemaText(c.schema));
        html += "<p><b>body</b> <code>" + esc(body.join(", ")) + "</code></p>";
      }
      html += "<table><tr><th>status</th><th>body</th><th></th></tr>";
      for (const [status, r] of Object.entries(op.responses)) {
        const body = Object.entries(r.content || {}).map(([t, c]) => t + ": " + schemaText(c.schema));
        html += "<tr><td>" + esc(status) + "</td><td><code>" + esc(body.join(", ")) + "</code></td><td>" +
          esc(r.description) + "</td></tr>";
      }
      html += "</table></details>";
    }
  }
  html += "<h2>Schemas</h2>";
  for (const [name, s] of Object.entries(doc.components.schemas)) {
    html += "<details><summary><code>" + esc(name) + "</code></summary><pre>" +
      esc(JSON.stringify(s, null, 2)) + "</pre></details>";
  }
  document.getElementById("ops").innerHTML = html;
}
fetch("openapi.json").then((r) => r.json()).then(render).catch((e) => {
  document.getElementById("ops").textContent = "Could not load openapi.json: " + e;
});
</script>
</body>
</html>
"""
