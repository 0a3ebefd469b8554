"""The API's OpenAPI 3.1 document, built from the routes' own declarations, served at `GET /openapi.json`; a docs
page at `/docs`.

Each route declares itself once, next to its code (`callrec.api.operations.declare`): summary, security, the
models it validates its body and query with, and every status it answers. This module turns the declarations
of every route in `app.url_map` into the document; a route without one fails the build. Response bodies are
`callrec.api.schemas`; descriptions are the view functions' docstrings. `tests/api/test_openapi.py` checks the
document against `app.url_map` and runs schemathesis against a live stack. The document is built once per app.
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

from callrec.api import schemas
from callrec.api.operations import (
    QUERY_DOCS,
    SECURITY_SCHEMES,
    Answer,
    Operation,
    Who,
    declaration,
    declare,
    error,
    query,
)
from callrec.domain.recording import RECORDING_ID

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
_CACHE_KEY = "callrec.openapi"

blueprint = Blueprint("openapi", __name__)

# ------------------------------------------------------------------------- parameters

PATH_PARAMETERS: dict[str, tuple[str, dict[str, Any], str]] = {
    # the route's argument: (the name in the document, its schema, its description)
    "room_id": (
        "roomId",
        {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$", "maxLength": 128},
        "The room's id, as `POST /api/v1/rooms` returned it.",
    ),
    "member_id": (
        "memberId",
        {"type": "string", "maxLength": 128},
        "A registered room member: the user's id, or the id an identified guest was given (`ext-...`).",
    ),
    "session_id": (
        "sessionId",
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"},
        "A WHIP session, from the `Location` of its offer's answer.",
    ),
    "token": (
        "token",
        {"type": "string", "maxLength": 128},
        "Talk's conversation token: the room's id.",
    ),
    "notification_id": (
        "notificationId",
        {"type": "string", "maxLength": 20},
        "A notification's id, as the notifications list gave it.",
    ),
    "recording_id": (
        "recordingId",
        {"type": "string", "pattern": RECORDING_ID.pattern, "maxLength": 512},
        "The recording's id: `{roomId}--EG_{egressId}--{uid}`.",
    ),
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


def operations(app: Quart) -> dict[str, Operation]:
    """Every route's declaration, by endpoint; a route without one is an error (it would be undocumented)."""
    found: dict[str, Operation] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        operation = declaration(app.view_functions[rule.endpoint])
        if operation is None:
            raise LookupError(f"route {rule.rule} ({rule.endpoint}) has no @declare(...)")
        found[rule.endpoint] = operation
    return found


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


def _responses(op: Operation, components: Components, *, api: bool, checked_ids: bool) -> dict[str, Any]:
    answers = dict(op.responses)
    if api:
        answers.setdefault(401, error())
    if checked_ids:  # a malformed room or recording id in the path (`operations.path_ids`)
        answers.setdefault(422, error())
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


def _head(get: dict[str, Any], operation_id: str) -> dict[str, Any]:
    """A GET's HEAD: its parameters and the status and headers of its answers, without their content."""
    responses = {
        status: {key: value for key, value in response.items() if key != "content"}
        for status, response in get["responses"].items()
    }
    summary = f"{get['summary']}: headers only"
    return {**get, "operationId": operation_id, "summary": summary, "responses": responses}


def _description(app: Quart, endpoint: str, op: Operation) -> str | None:
    docstring = inspect.getdoc(app.view_functions[endpoint])
    parts = [part for part in (op.notes, docstring) if part]
    return "\n\n".join(parts) or None


def build_document(app: Quart) -> dict[str, Any]:
    declared = operations(app)
    components = Components()
    response_models = [*schemas.RESPONSE_MODELS]
    components.add(response_models, "serialization", "Output")
    request_models = [op.body for op in declared.values() if op.body is not None]
    query_models = [op.query for op in declared.values() if op.query is not None]
    components.add([*dict.fromkeys(request_models + query_models)], "validation", "Request")
    query_schemas = {model: components.inline(model) for model in dict.fromkeys(query_models)}

    paths: dict[str, dict[str, Any]] = {}
    for endpoint, op in declared.items():
        path, methods, args = _route(app, endpoint)
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
        if op.query is not None:
            parameters += _model_query(query_schemas[op.query])
        parameters += [dict(p) for p in op.parameters]
        operation: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "security": op.security,
        }
        if (description := _description(app, endpoint, op)) is not None:
            operation["description"] = description
        if parameters:
            operation["parameters"] = parameters
        if op.body is not None:
            body_schema = components.refs[op.body]
            required = bool(op.body.model_json_schema().get("required"))
            operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": body_schema}}}
        checked_ids = path.startswith("/api/v1/") and bool({"room_id", "recording_id"} & set(args))
        operation["responses"] = _responses(op, components, api=api, checked_ids=checked_ids)
        for method in methods:
            if method in paths.setdefault(path, {}):
                raise ValueError(f"{method.upper()} {path} is described twice")
            paths[path][method] = operation
        if op.head is not None and "get" in methods:
            paths[path]["head"] = _head(operation, op.head)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "callrec API",
            "version": _version(),
            "description": "Durable call recording: rooms, calls and recordings (OpenVidu Meet style). "
            "Errors are `{error, message, details?}`.",
        },
        "tags": [{"name": name} for name in dict.fromkeys(op.tag for op in declared.values())],
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
@declare(
    "getOpenApi",
    "This document",
    tag="Docs",
    security=Who.NONE,
    responses={200: Answer("The OpenAPI 3.1 document", schemas.OpenApiDocument)},
)
async def openapi_json() -> Response:
    extensions = current_app.extensions
    text: str | None = extensions.get(_CACHE_KEY + ".json")
    if text is None:
        text = extensions[_CACHE_KEY + ".json"] = json.dumps(document(current_app))
    return Response(text, content_type="application/json")


@blueprint.get("/docs")
@declare(
    "getDocs",
    "A page that lists this document",
    tag="Docs",
    security=Who.NONE,
    responses={200: Answer("The page", binary=("text/html",))},
)
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
