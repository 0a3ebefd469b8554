"""The OpenAPI document: valid, complete against the app's routes, and true to what a live stack answers.

The live part is schemathesis 4 against the real API (+ worker + recorder + Temporal) on loopback: first a
scenario of explicit requests that reach every success answer (start, stop, media ranges, downloads, ZIP,
tokens, ...), then generated requests for every operation, then the deleting requests. Every response is
checked for: no 5xx, a documented status code, a documented content type, a body and headers that fit the
documented schema. All failures are collected and reported together, each with a curl line to reproduce it.

Then hostile requests for every operation (`hostile`): a generated request with one input (a query or path
parameter, a header the API reads, or the whole body) replaced by a value that once crashed a handler:
digits of other scripts, numbers beyond `int()`, non-ASCII text, JSON nested too deeply. Those are
checked for one thing: no 5xx.

The stack runs in this test's event loop, so schemathesis (synchronous `requests`) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httpx
import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from callrec.api import openapi
from callrec.api.app import ANONYMOUS_ENDPOINTS, create_app
from callrec.api.services import Services
from callrec.domain.settings import Settings
from tests.conftest import API_KEY, SECRET, StackFactory
from tests.helpers import SMALL, create_room, join, record

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Examples per operation; CALLREC_OPENAPI_EXAMPLES=5 runs five times as many (a deeper local hunt).
SCALE = max(1, int(os.environ.get("CALLREC_OPENAPI_EXAMPLES", "1")))
POSITIVE_EXAMPLES = 25 * SCALE
NEGATIVE_EXAMPLES = 10 * SCALE  # for operations that have something to get wrong
ADMIN = {"X-API-KEY": API_KEY}
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}
PREVIEWS_AND_MEDIA = ("media", "poster", "thumbnails.jpg", "thumbnails.vtt")
PLACEHOLDER = re.compile(r"<[^<>]+>|\{[^{}]+\}")
HOSTILE_VALUES = (
    "\u00b2",  # SUPERSCRIPT TWO: str.isdigit() is true, int() refuses it
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() takes it, HTTP does not
    "\uff11\uff12",  # FULLWIDTH DIGITS
    "9" * 5000,  # beyond what int() converts (4300 digits)
    "99999999999999999999999",
    "-1",
    "\u00e9\u202e\U0001f600",  # non-ASCII, a bidi override, outside the BMP
    "bytes=" + "9" * 5000 + "-",
    "bytes=\u0663-\u00b2",
    "1e999",
)
# Headers the recorder protocol's routes read besides those the document declares; sent UTF-8 encoded.
TALK_HEADERS = ("Talk-Recording-Random", "Talk-Recording-Checksum", "Talk-Recording-Backend")
DEEP_JSON = b"[" * 10_000 + b"]" * 10_000  # nested beyond the JSON parser's recursion limit


# ------------------------------------------------------------------------- the document itself


def offline_app(tmp_path: Path) -> Any:
    """The app with no services behind it: enough for its url_map and its document."""
    settings = Settings(api_key=API_KEY, recording_secret=SECRET, data_dir=tmp_path)
    none = cast(Any, None)
    return create_app(Services(settings=settings, catalog=none, store=none, temporal=none))


def shape(path: str) -> str:
    """A route or document path with its parameters blanked: `/rooms/<room_id>` and `/rooms/{roomId}` agree."""
    return PLACEHOLDER.sub("{}", path)


def test_document_is_valid_openapi_and_documents_every_route(tmp_path: Path) -> None:
    app = offline_app(tmp_path)
    doc = openapi.build_document(app)
    assert doc["openapi"].startswith("3.1")

    schema = schemathesis.openapi.from_dict(doc)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    broken = [str(result.err()) for result in schema.get_all_operations() if isinstance(result, Err)]
    assert not broken, broken

    served = {
        (method, shape(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - AUTOMATIC_METHODS
    }
    documented = {(method.upper(), shape(path)) for path, item in doc["paths"].items() for method in item}
    # Every GET answers HEAD too; some document it (`declare(head=...)`): the media and its previews.
    heads = {entry for entry in documented if entry[0] == "HEAD"}
    served_heads = {("HEAD", shape(r.rule)) for r in app.url_map.iter_rules() if "HEAD" in (r.methods or set())}
    assert heads <= served_heads, "a HEAD documented where no route answers it"
    assert {path for _, path in heads} >= {shape(f"/api/v1/recordings/{{id}}/{leaf}") for leaf in PREVIEWS_AND_MEDIA}
    assert served - documented == set(), "routes without an operation in the OpenAPI document"
    assert documented - heads - served == set(), "operations in the OpenAPI document that no route serves"

    operations = [op for item in doc["paths"].values() for op in item.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)), "operationIds must be unique"

    # Security as the app enforces it: only ANONYMOUS_ENDPOINTS answer without credentials under /api/v1.
    declared = openapi.operations(app)
    open_to_anyone = {endpoint for endpoint, op in declared.items() if not op.security or {} in op.security}
    assert {endpoint for endpoint in open_to_anyone if endpoint.startswith("api_v1.")} == ANONYMOUS_ENDPOINTS
    schemes = set(doc["components"]["securitySchemes"])
    assert {name for op in operations for requirement in op["security"] for name in requirement} <= schemes

    # Request bodies are the routes' own models.
    bodies = {op.operation_id: op.body for op in declared.values() if op.body is not None}
    for item in doc["paths"].values():
        for op in item.values():
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] == bodies[op["operationId"]].__name__
    assert openapi.document(app) is openapi.document(app)  # built once per app


# ------------------------------------------------------------------------- schemathesis against a live stack


@dataclass
class Findings:
    """Distinct failures, each once with the first request that showed it."""

    found: dict[tuple[str, ...], str] = field(default_factory=dict)
    requests: int = 0
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def record(self, label: str, exc: BaseException) -> None:
        if isinstance(exc, FailureGroup):
            for failure in exc.exceptions:
                key = (label, type(failure).__name__, failure.title, str(getattr(failure, "status_code", "")))
                self.found.setdefault(key, f"{label}: {exc.message}")
        else:
            self.found.setdefault((label, type(exc).__name__), f"{label}: {type(exc).__name__}: {exc}")

    def coverage(self) -> str:
        return "\n".join(f"  {label}: {dict(sorted(seen.items()))}" for label, seen in sorted(self.statuses.items()))

    def report(self) -> str:
        return "\n\n".join(self.found.values())


@dataclass
class Live:
    schema: Any
    base_url: str
    session: requests.Session
    findings: Findings

    def op(self, method: str, path: str) -> Any:
        return self.schema[path][method]

    def send(
        self, case: Case, *, checks: list[Any] = CHECKS, kind: str = "", **call: Any
    ) -> schemathesis.Response | None:
        """Sends a case and checks its response; failures are recorded, not raised. `call`: e.g. a raw `data`."""
        self.findings.requests += 1
        label = f"{case.operation.method.upper()} {case.operation.path}{kind}"
        try:
            response = case.call(base_url=self.base_url, session=self.session, **call)
            self.findings.statuses[label][response.status_code] += 1
            case.validate_response(response, checks=checks, transport_kwargs={"base_url": self.base_url})
        except FailureGroup as exc:
            self.findings.record(label, exc)
            return None
        except requests.RequestException as exc:
            self.findings.record(label, exc)
            return None
        return response

    def expect(self, status: int, method: str, path: str, *, admin: bool = True, **case: Any) -> dict[str, Any]:
        """An explicit request of the scenario: checked like any other, and it must answer `status`.

        As the admin (like the generated requests, which get the key from the config) unless `admin` is False.
        """
        case["headers"] = (ADMIN if admin else {}) | case.get("headers", {})
        built = self.op(method, path).Case(**case)
        response = self.send(built)
        if response is None:
            return {}
        if response.status_code != status:
            self.findings.found[(method, path, "scenario", str(status))] = (
                f"{method} {path} {case}: expected {status}, got {response.status_code}: {response.text[:500]}"
            )
        content_type = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
        return cast(dict[str, Any], response.json()) if content_type.startswith("application/json") else {}


@dataclass
class Seeded:
    rooms: list[str] = field(default_factory=list)
    recordings: list[str] = field(default_factory=list)
    # kept out of the generated requests until the deleting part of the scenario has used them
    spare_room: str = ""
    spare_recording: str = ""
    # an empty room only the hostile requests name (as Talk's `token`), so that deletes do not take it first
    talk_room: str = ""


def load_schema(base_url: str) -> Any:
    config = schemathesis.Config.from_dict(
        {
            # Every request as the admin: credentials are not what is being tested here (test_access is).
            "headers": ADMIN,
            "generation": {"with-security-parameters": False},
        }
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def wait_until_stored(live: Live, recording_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = live.expect(200, "GET", "/api/v1/recordings/{recordingId}", path_parameters={"recordingId": recording_id})
        if got.get("status") in ("complete", "failed") or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def scenario(live: Live) -> Seeded:
    """Explicit requests that reach the success answers generated requests cannot (they need real state)."""
    rooms, room, recordings = "/api/v1/rooms", "/api/v1/rooms/{roomId}", "/api/v1/recordings"
    recording = "/api/v1/recordings/{recordingId}"

    def create(name: str, **recording_config: Any) -> dict[str, Any]:
        body = {"roomName": name, "config": {"recording": {"encoding": SMALL} | recording_config}}
        return live.expect(201, "POST", rooms, body=body)

    called, spare, empty = create("Seeded call"), create("Seeded spare"), create("Seeded empty")
    talk = create("Seeded talk")
    disabled = create("Seeded disabled", enabled=False)
    assert called and spare and empty and disabled and talk, live.findings.report()
    people = {"participants": [{"id": "alice", "name": "Alice"}, {"name": "Bob", "role": "moderator"}]}
    for target in (called, spare, disabled):
        live.expect(200, "PUT", f"{room}/call", path_parameters={"roomId": target["roomId"]}, body=people)

    started = [
        live.expect(201, "POST", recordings, body={"roomId": target["roomId"], "config": {"encoding": SMALL}})
        for target in (called, spare)
    ]
    assert all(started), live.findings.report()
    ids = [rec["recordingId"] for rec in started]
    live.expect(403, "POST", recordings, body={"roomId": disabled["roomId"]})  # recording disabled
    live.expect(409, "POST", recordings, body={"roomId": empty["roomId"]})  # nobody in the call
    live.expect(409, "POST", recordings, body={"roomId": called["roomId"]})  # already recording
    live.expect(409, "PUT", f"{room}/config", path_parameters={"roomId": called["roomId"]},
                body={"config": {"recording": {"layout": "speaker"}}})  # fmt: skip
    live.expect(409, "DELETE", room, path_parameters={"roomId": called["roomId"]})  # recording in progress
    time.sleep(1.5)
    for recording_id in ids:
        live.expect(202, "POST", f"{recording}/stop", path_parameters={"recordingId": recording_id},
                    query={"fields": "recordingId,status"})  # fmt: skip
    for recording_id in ids:
        stored = wait_until_stored(live, recording_id)
        assert stored.get("status") == "complete", stored

    first = {"recordingId": ids[0]}
    live.expect(200, "GET", recording, path_parameters=first, query={"fields": "status,size"})
    live.expect(200, "GET", recording, path_parameters=first, headers={"X-Fields": "duration"})
    live.expect(409, "POST", f"{recording}/stop", path_parameters=first)  # not active any more
    live.expect(200, "GET", f"{recording}/media", path_parameters=first)
    live.expect(206, "GET", f"{recording}/media", path_parameters=first, headers={"Range": "bytes=0-99"})
    live.expect(422, "GET", f"{recording}/media", path_parameters=first, headers={"Range": "bytes=-10"})
    live.expect(416, "GET", f"{recording}/media", path_parameters=first, headers={"Range": "bytes=999999999-"})
    live.expect(200, "GET", f"{recording}/download", path_parameters=first)
    for picture in ("poster", "thumbnails.vtt", "thumbnails.jpg"):
        live.expect(200, "GET", f"{recording}/{picture}", path_parameters=first)
    live.expect(200, "GET", f"{recordings}/download", query={"recordingIds": [ids[0], "nope--EG_x--y"]})
    live.expect(400, "GET", f"{recordings}/download", query={"recordingIds": ["nope--EG_x--y"]})
    for odd in ("x\r\ny", "x\x00y"):  # not in a recording id's format: refused as Meet refuses them
        live.expect(422, "GET", f"{recordings}/download", query={"recordingIds": [ids[0], odd]})
    for odd in ("r--EG_x\r\ny--z", "r--EG_x\x00y--z"):  # well-formed but unknown: back in X-Skipped-Recordings
        live.expect(200, "GET", f"{recordings}/download", query={"recordingIds": [ids[0], odd]})
    for private in (False, True):
        shared = live.expect(200, "GET", f"{recording}/url", path_parameters=first, query={"privateAccess": private})
        # the player page's URL (`.../recording/{id}?secret=...`), whose secret the API takes as `recordingSecret`
        secret = {"recordingSecret": parse_qs(urlsplit(shared.get("url", "")).query).get("secret", [""])[0]}
        live.expect(200, "GET", recording, path_parameters=first, query=secret)
        # Without credentials: the public secret is enough (the room allows public access), the private one is not.
        live.expect(401 if private else 200, "GET", recording, admin=False, path_parameters=first, query=secret)
        live.expect(401 if private else 206, "GET", f"{recording}/media", admin=False, path_parameters=first,
                    query=secret, headers={"Range": "bytes=0-"})  # fmt: skip
        live.expect(401 if private else 200, "GET", f"{recording}/thumbnails.vtt", admin=False,
                    path_parameters=first, query=secret)  # fmt: skip
    live.expect(401, "GET", recording, admin=False, path_parameters=first)
    live.expect(400, "GET", recording, path_parameters=first, query={"recordingSecret": "wrong"})
    live.expect(200, "GET", recordings, query={"roomId": called["roomId"], "maxItems": 1, "sortField": "size"})
    page = live.expect(200, "GET", recordings, query={"maxItems": 1, "sortOrder": "asc"})
    token = page.get("pagination", {}).get("nextPageToken")
    live.expect(200, "GET", recordings, query={"maxItems": 1, "sortOrder": "asc", "nextPageToken": token})
    live.expect(422, "GET", recordings, query={"nextPageToken": token})  # another sort order
    live.expect(200, "GET", recordings, query={"roomName": "seeded", "roomNameMatchMode": "prefix",
                                                "roomNameCaseInsensitive": True, "status": "complete"})  # fmt: skip

    target = {"roomId": called["roomId"]}
    live.expect(200, "GET", rooms, query={"maxItems": 2})
    live.expect(200, "GET", room, path_parameters=target)
    live.expect(200, "GET", f"{room}/config", path_parameters=target)
    live.expect(200, "PUT", f"{room}/config", path_parameters=target,
                body={"config": {"recording": {"publicAccess": False}}})  # fmt: skip
    live.expect(200, "GET", f"{room}/call", path_parameters=target)
    live.expect(404, "GET", f"{room}/call", path_parameters={"roomId": empty["roomId"]})
    for role in ("moderator", "speaker"):
        body = {"secret": called[f"{role}Secret"], "participantName": role}
        live.expect(200, "POST", f"{room}/members/token", path_parameters=target, body=body)
    live.expect(400, "POST", f"{room}/members/token", path_parameters=target, body={"secret": "wrong"})
    live.expect(413, "POST", rooms, body={"roomName": "x" * (1024 * 1024)})

    # The other credentials, and none: what each answers must be documented too.
    speaker = live.expect(200, "POST", f"{room}/members/token", admin=False, path_parameters=target,
                          body={"secret": called["speakerSecret"]})  # fmt: skip
    member = {"X-Room-Member-Token": speaker.get("token", "")}
    shown = live.expect(200, "GET", room, admin=False, path_parameters=target, headers=member)
    assert shown and "speakerSecret" not in shown, shown  # secrets are for admins
    live.expect(200, "GET", recordings, admin=False, headers=member)
    live.expect(401, "GET", rooms, admin=False, headers=member)  # a credential the endpoint does not take
    live.expect(403, "POST", f"{recording}/stop", admin=False, path_parameters=first, headers=member)
    live.expect(403, "GET", room, admin=False, path_parameters={"roomId": empty["roomId"]}, headers=member)
    for role in ("admin", "user"):  # both may create rooms (a user owns the rooms it creates)
        user = live.expect(200, "POST", "/api/v1/auth/token", body={"userId": "ada", "role": role})
        bearer = {"Authorization": f"Bearer {user.get('token', '')}"}
        live.expect(200, "GET", rooms, admin=False, headers=bearer)
        live.expect(201, "POST", rooms, admin=False, headers=bearer, body={"roomName": f"By {role}"})
        live.expect(401, "POST", "/api/v1/auth/token", admin=False, headers=bearer, body={"userId": "eve"})
    live.expect(401, "GET", rooms, admin=False)
    live.expect(401, "GET", rooms, admin=False, headers={"X-API-KEY": "wrong"})
    live.expect(401, "GET", rooms, admin=False, headers={"Authorization": "Bearer nope"})
    live.expect(401, "POST", f"{room}/members/token", admin=False, path_parameters=target,
                headers={"X-Room-Member-Token": "nope"}, body={"secret": called["speakerSecret"]})  # fmt: skip
    live.expect(200, "GET", "/health", admin=False)
    return Seeded(
        rooms=[called["roomId"], empty["roomId"], disabled["roomId"]],
        recordings=[ids[0]],
        spare_room=spare["roomId"],
        talk_room=talk["roomId"],
        spare_recording=ids[1],
    )


def deleting_scenario(live: Live, seeded: Seeded) -> None:
    """The deleting answers, on resources the generated requests did not get to."""
    rooms, room = "/api/v1/rooms", "/api/v1/rooms/{roomId}"
    recordings, recording = "/api/v1/recordings", "/api/v1/recordings/{recordingId}"
    spare = {"roomId": seeded.spare_room}
    live.expect(409, "DELETE", room, path_parameters=spare)  # it has a recording
    live.expect(204, "DELETE", f"{room}/call", path_parameters=spare)
    live.expect(404, "DELETE", f"{room}/call", path_parameters=spare)
    live.expect(200, "DELETE", recording, path_parameters={"recordingId": seeded.spare_recording})
    live.expect(400, "DELETE", recordings, query={"recordingIds": [seeded.spare_recording]})  # gone already
    live.expect(200, "DELETE", room, path_parameters=spare)
    live.expect(404, "DELETE", room, path_parameters=spare)
    closing = live.expect(201, "POST", rooms, body={"roomName": "Seeded closing"})
    live.expect(200, "DELETE", room, path_parameters={"roomId": closing.get("roomId")},
                query={"withRecordings": "close"})  # fmt: skip
    live.expect(409, "POST", f"{room}/members/token", path_parameters={"roomId": closing.get("roomId")},
                body={"secret": closing.get("moderatorSecret")})  # fmt: skip


def strategies(operation: Any, mode: GenerationMode, seeded: Seeded) -> list[Any]:
    """Generated cases for `operation`: with random ids, and with the ids of seeded rooms and recordings.

    `POST /recordings` gets random room ids only (they 404): with a seeded room it would start real recordings
    with generated encodings (up to 4K at 60 fps) on a 2-core machine; the scenario covers its other answers.
    """
    plain = operation.as_strategy(generation_mode=mode)
    names = {parameter.name for parameter in operation.path_parameters}
    query = {parameter.name for parameter in operation.query}
    has_more = bool(query) or bool(list(operation.headers)) or bool(operation.body)  # left to get wrong
    if mode is GenerationMode.NEGATIVE and not has_more:
        return [plain]
    variants = [plain]
    if "roomId" in names:
        variants += [operation.as_strategy(generation_mode=mode, path_parameters={"roomId": r}) for r in seeded.rooms]
    if "recordingId" in names:
        variants += [
            operation.as_strategy(generation_mode=mode, path_parameters={"recordingId": r}) for r in seeded.recordings
        ]
    if "recordingIds" in query and mode is GenerationMode.POSITIVE:
        variants.append(
            operation.as_strategy(generation_mode=mode, query={"recordingIds": [*seeded.recordings, "x--EG_y--z"]})
        )
    return variants


def has_inputs(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def fuzz(live: Live, operation: Any, seeded: Seeded) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
        if mode is GenerationMode.NEGATIVE and not has_inputs(operation):
            continue  # nothing to send wrong (GET /health)

        @hypothesis.given(case=st.one_of(strategies(operation, mode, seeded)))
        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time; failures carry a curl line
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Case) -> None:
            live.send(case)

        try:
            run()
        except hypothesis.errors.Unsatisfiable as exc:
            live.findings.record(f"{label} ({mode.value})", exc)


def hostile_slots(operation: Any) -> list[tuple[str, str]]:
    """Where `operation` takes input: its parameters, the headers routes read, its body (`("body", "")`)."""
    slots = [("query", p.name) for p in operation.query] + [("path", p.name) for p in operation.path_parameters]
    slots += [("header", p.name) for p in operation.headers]
    if operation.definition.raw.get("security") == [] and operation.path.startswith("/ocs/"):
        slots += [("header", name) for name in TALK_HEADERS]  # the recorder protocol's signature
    if operation.method.upper() != "GET":  # also where no body is declared: Talk's endpoints read JSON bodies too
        slots += [("header", "Content-Type"), ("body", "")]
    return slots


def hostile(live: Live, operation: Any, seeded: Seeded) -> None:
    """Every input of `operation` with every hostile value, each in a generated request of its own: no 5xx."""
    label = f"{operation.method.upper()} {operation.path} (hostile)"
    combos = [(slot, value) for slot in hostile_slots(operation) for value in HOSTILE_VALUES]
    combos += [(("body", ""), "")]  # a too deeply nested body, once (for GET too: it must be ignored)
    todo = iter(combos)

    plain = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    # Requests on existing rooms and recordings, so that a hostile value reaches the code that parses it
    # (with random ids most would stop at a 404). Talk's `token` is an empty room's id: a Talk start fails there.
    existing = strategies(operation, GenerationMode.POSITIVE, seeded)[1:]
    if "token" in {parameter.name for parameter in operation.path_parameters}:
        existing.append(operation.as_strategy(path_parameters={"token": seeded.talk_room}))

    @hypothesis.given(data=st.data(), _=st.integers())  # the integer: never "all examples tried" for a bare GET
    @hypothesis.settings(
        max_examples=2 * len(combos),  # room for rejected examples; the requests stop once every combination ran
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(data: st.DataObject, _: int) -> None:
        # Both drawn every time: Hypothesis wants the same draws whatever the counter says.
        random_ids = data.draw(plain)
        existing_ids = data.draw(st.one_of(existing)) if existing else random_ids
        combo = next(todo, None)
        if combo is None:
            return
        (where, name), value = combo
        case = random_ids if where == "path" else existing_ids
        call: dict[str, Any] = {}
        if where == "query":
            case.query = {**(case.query or {}), name: value}
        elif where == "path":
            case.path_parameters = {**(case.path_parameters or {}), name: value}
        elif where == "header":  # as UTF-8 on the wire (requests sends header strings as Latin-1)
            case.headers[name] = value.encode().decode("latin-1")
        else:
            case.headers["Content-Type"] = "application/json"
            call["data"] = DEEP_JSON
        live.send(case, checks=[not_a_server_error], kind=" (hostile)", **call)

    try:
        run()
    except hypothesis.errors.Unsatisfiable as exc:
        live.findings.record(label, exc)
    if (left := sum(1 for _ in todo)) > 0:
        live.findings.found[(label, "not run")] = f"{label}: {left} hostile combinations were not sent"


def operations_in_order(schema: Any) -> Iterator[Any]:
    """Reading first, then creating and changing, then deleting: deletes would leave little to read."""
    order = {"get": 0, "put": 1, "post": 1, "delete": 2}
    found = [result.ok() for result in schema.get_all_operations()]
    yield from sorted(found, key=lambda op: (order.get(op.method.lower(), 1), op.path, op.method))


async def test_live_stack_answers_as_documented(stacks: StackFactory) -> None:
    stack = await stacks.start()
    base_url = str(stack.api.base_url).rstrip("/")

    async with httpx.AsyncClient(base_url=base_url) as anonymous:  # both are served without credentials
        served = await anonymous.get("/openapi.json")
        docs = await anonymous.get("/docs")
    assert served.status_code == 200 and served.headers["content-type"] == "application/json"
    assert served.json() == json.loads(json.dumps(openapi.build_document(offline_app(stack.settings.data_dir))))
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "openapi.json" in docs.text and "https://" not in docs.text  # works offline: no CDN

    def run() -> tuple[Findings, float]:
        started = time.monotonic()
        schema = load_schema(base_url)
        live = Live(schema, base_url, requests.Session(), Findings())
        seeded = scenario(live)
        ordered = list(operations_in_order(schema))
        for operation in ordered:
            if operation.method.lower() != "delete":
                fuzz(live, operation, seeded)
                hostile(live, operation, seeded)
        deleting_scenario(live, seeded)
        for operation in ordered:
            if operation.method.lower() == "delete":
                fuzz(live, operation, seeded)
                hostile(live, operation, seeded)
        live.session.close()
        return live.findings, time.monotonic() - started

    findings, elapsed = await asyncio.to_thread(run)
    print(f"schemathesis: {findings.requests} requests in {elapsed:.1f} s")
    print(f"statuses seen:\n{findings.coverage()}")
    assert not findings.found, f"{len(findings.found)} failures:\n\n{findings.report()}"


# ------------------------------------------------------------------------- what schemathesis once found


async def test_null_in_a_config_patch_leaves_that_field_unchanged(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder=False)
    room_id = await create_room(stack.api, "Patched", layout="speaker")
    patch = {"config": {"recording": {"layout": None, "enabled": False}}}
    response = await stack.api.put(f"/api/v1/rooms/{room_id}/config", json=patch)
    assert response.status_code == 200, response.text
    assert (response.json()["recording"]["layout"], response.json()["recording"]["enabled"]) == ("speaker", False)


async def test_skipped_ids_with_control_characters_are_encoded_in_the_header(stacks: StackFactory) -> None:
    stack = await stacks.start()
    room_id = await create_room(stack.api, "Zipped")
    await join(stack.api, room_id, "Alice")
    recording_id = (await record(stack.api, room_id, seconds=0.5))["recordingId"]
    # well-formed as Meet checks ids (three `--` parts, `EG_...` in the middle), control characters inside
    odd = "r--EG_x\r\ny--z"
    response = await stack.api.get("/api/v1/recordings/download", params={"recordingIds": f"{recording_id},{odd}"})
    assert response.status_code == 200, response.text
    assert response.headers["X-Skipped-Recordings"] == "r--EG_x%0D%0Ay--z"
