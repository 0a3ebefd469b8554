"""The web console: sign in, rooms, a room's live recording control, recordings, and the player.

Server-rendered pages (Jinja, autoescaped) with one script and one stylesheet of this package (no third-party
origin, no inline script: the policy below allows only `'self'`). What a page shows comes from the JSON API,
which the script calls with the console session (`session.SessionBridge`), so every rule about who may see or do
what stays the API's; the pages themselves only need to know who is signed in, to say it and to send a member
to its room. `/recording/{recordingId}` is the player a shared URL opens: with the URL's `secret` it needs no
sign-in (the media endpoints decide, as before), and it shows that recording only.
"""

from __future__ import annotations

import hmac
import logging
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from quart import Blueprint, Response, render_template, request

from callrec.api import member_exchange
from callrec.api.baseurl import public_base
from callrec.api.console import session
from callrec.api.errors import ApiError, recording_not_found, room_not_found
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.services import services
from callrec.api.validation import recording_id_problems
from callrec.domain import tokens
from callrec.domain.tokens import InvalidToken, Permission, Principal

log = logging.getLogger(__name__)
blueprint = Blueprint("console", __name__, template_folder="templates")

ADMIN_SUBJECT = "console-admin"
MAX_SECRET_LENGTH = 256
MAX_FIELD = 2048
STATIC = resources.files("callrec.api.console").joinpath("static")
PAGE = Answer("The page (HTML)", binary=("text/html",))
SEE_OTHER = Answer("To the sign-in page (not signed in), or the page to go on to")
GO_ON = {200: PAGE, 303: SEE_OTHER}


def policy() -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": policy(),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def prefix() -> str:
    """The path the API is served under (`CALLREC_PUBLIC_URL=https://host/callrec`): every link starts with it."""
    return urlsplit(public_base()).path


def secure() -> bool:
    return public_base().startswith("https://")


def viewer() -> Principal | None:
    """Who the console session is, if it holds a token that still verifies."""
    found = session.read_session(request.cookies.get(session.SESSION_COOKIE))
    if found is None:
        return None
    kind, token = found
    try:
        return tokens.read_token(services().settings.token_key, token, kind)
    except InvalidToken:
        return None


def csrf_token() -> str:
    return request.cookies.get(session.CSRF_COOKIE) or session.new_csrf()


async def page(template: str, status: int = 200, **context: Any) -> Response:
    csrf = csrf_token()
    who = viewer()
    html = await render_template(f"console/{template}", base=prefix(), csrf=csrf, who=who, **context)
    response = Response(html, status=status, content_type="text/html; charset=utf-8", headers=page_headers())
    if request.cookies.get(session.CSRF_COOKIE) != csrf:
        set_cookie(response, session.CSRF_COOKIE, csrf)
    return response


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure(), httponly=True, samesite="Strict")


def go(path: str) -> Response:
    return Response("", status=303, headers={"Location": f"{prefix()}{path}", **page_headers()})


def sign_in_first() -> Response:
    return go("/console/sign-in?next=" + quote(request.path, safe="/"))


async def checked_form() -> dict[str, str]:
    """A console form's fields, once its CSRF token and origin are right (403 otherwise)."""
    form = await request.form
    hosts = session.request_hosts(
        services().settings, request.host, request.headers.get("X-Forwarded-Host"), request.remote_addr
    )
    fine = session.csrf_matches(form.get(session.CSRF_FIELD), request.cookies.get(session.CSRF_COOKIE))
    origin, site = request.headers.get("Origin"), request.headers.get("Sec-Fetch-Site")
    if not fine or not session.same_origin(origin, site, hosts):
        log.info("console form refused: csrf %s, origin %s, fetch site %s", "ok" if fine else "wrong", origin, site)
        raise ApiError(403, "Authorization Error", "The form is stale or from another site: reload it and try again")
    return {name: str(value)[:MAX_FIELD] for name, value in form.items()}


def room_link(link: str) -> tuple[str, str] | None:
    """The room id and secret of a console join link (`.../console/join/{roomId}?secret=...`)."""
    parts = urlsplit(link.strip())
    segments = [s for s in parts.path.split("/") if s]
    secret = parse_qs(parts.query).get("secret", [""])[0]
    if len(segments) < 2 or segments[-2] != "join" or not secret:
        return None
    return segments[-1], secret


# ------------------------------------------------------------------------- sign in and out


@blueprint.get("/console")
@declare(
    "getConsole",
    "The web console: to the page of whoever is signed in",
    tag="Console",
    security=Who.NONE,
    responses={303: SEE_OTHER},
)
async def home() -> Response:
    who = viewer()
    if who is None:
        return go("/console/sign-in")
    if who.kind == "member" and who.room_id:
        return go(f"/console/rooms/{who.room_id}")
    return go("/console/rooms")


@blueprint.get("/console/sign-in")
@declare("getConsoleSignIn", "The console's sign-in page", tag="Console", security=Who.NONE, responses={200: PAGE})
async def sign_in_page() -> Response:
    return await page("sign_in.html", next=safe_next(request.args.get("next")))


@blueprint.get("/console/join/<room_id>")
@declare(
    "getConsoleJoin",
    "Sign in to the console with a room's moderator or speaker link",
    tag="Console",
    security=Who.NONE,
    responses={200: PAGE},
)
async def join_page(room_id: str) -> Response:
    secret = request.args.get("secret", "")[:MAX_SECRET_LENGTH]
    return await page("join.html", room_id=room_id, secret=secret)


def safe_next(value: str | None) -> str:
    """A console path to go on to after signing in: only one of the console's own (no open redirect)."""
    base = prefix()
    if value and value.startswith(f"{base}/") and not value.startswith("//") and "\\" not in value:
        path = value[len(base) :]
        if path.startswith(("/console/", "/recording/")):
            return path
    return "/console"


@blueprint.post("/console/sign-in")
@declare(
    "consoleSignIn",
    "Sign in to the console (form: the API key, or a room's link or id and secret)",
    tag="Console",
    security=Who.NONE,
    responses={
        200: PAGE,
        303: Answer("Signed in: to the console"),
        400: Answer("The sign-in page, saying what was wrong", binary=("text/html",)),
        403: error("The form is stale or from another site"),
        429: error("Too many failed sign-ins from this address"),
    },
)
async def sign_in() -> Response:
    form = await checked_form()
    settings = services().settings
    address = request.remote_addr or "unknown"
    if (wait_s := services().throttle.retry_after(address)) is not None:
        message = "Too many failed sign-ins; try again later"
        raise ApiError(429, "Too Many Requests", message, headers={"Retry-After": str(wait_s)})
    next_path = safe_next(form.get("next"))
    api_key = form.get("apiKey", "")
    if api_key:
        if not hmac.compare_digest(api_key.encode(), settings.require_api_key().encode()):
            return await refused(address, "That is not the API key.", next_path)
        token = tokens.user_token(settings.token_key, ADMIN_SUBJECT, "admin", settings.user_token_ttl_s)
        return signed_in(session.session_value("user", token), int(settings.user_token_ttl_s), next_path)
    found = room_link(form.get("link", "")) or (form.get("roomId", ""), form.get("secret", ""))
    room_id, secret = found
    name = form.get("participantName", "").strip()[:128] or "console"
    room = await services().catalog.get_room(room_id) if room_id and secret else None
    exchanged = None
    if room is not None and room.status != "closed":
        exchanged = member_exchange.exchange(settings, room, secret, name)
    if exchanged is None:
        return await refused(address, "Give the API key, or a room's moderator or speaker link.", next_path)
    return signed_in(session.session_value("member", exchanged.token), int(settings.member_token_ttl_s), next_path)


async def refused(address: str, message: str, next_path: str) -> Response:
    services().throttle.failed(address)
    return await page("sign_in.html", status=400, message=message, next=next_path)


def signed_in(value: str, max_age: int, next_path: str) -> Response:
    response = go(next_path)
    set_cookie(response, session.SESSION_COOKIE, value, max_age)
    set_cookie(response, session.CSRF_COOKIE, session.new_csrf())  # a new session, a new CSRF token
    return response


@blueprint.post("/console/sign-out")
@declare(
    "consoleSignOut",
    "Sign out of the console",
    tag="Console",
    security=Who.NONE,
    responses={303: Answer("Signed out: to the sign-in page"), 403: error("The form is stale or from another site")},
)
async def sign_out() -> Response:
    await checked_form()
    response = go("/console/sign-in")
    response.delete_cookie(session.SESSION_COOKIE, path="/", secure=secure(), httponly=True, samesite="Strict")
    return response


# ------------------------------------------------------------------------- pages


@blueprint.get("/console/rooms")
@declare("getConsoleRooms", "The console's rooms", tag="Console", security=Who.NONE, responses=GO_ON)
async def rooms_page() -> Response:
    who = viewer()
    if who is None:
        return sign_in_first()
    if who.kind == "member" and who.room_id:
        return go(f"/console/rooms/{who.room_id}")
    return await page("rooms.html")


@blueprint.get("/console/rooms/<room_id>")
@declare(
    "getConsoleRoom",
    "A room in the console: its config, links, call and live recording",
    tag="Console",
    security=Who.NONE,
    responses={**GO_ON, 404: error("Not a room id")},
)
async def room_page(room_id: str) -> Response:
    who = viewer()
    if who is None:
        return sign_in_first()
    if len(room_id) > 128:
        raise room_not_found(room_id[:128])
    if who.kind == "member" and who.room_id != room_id:  # a member token reaches its own room only
        return go(f"/console/rooms/{who.room_id}")
    return await page(
        "room.html",
        room_id=room_id,
        manages=who.kind == "user",
        controls=Permission.CONTROL in who.permissions,
    )


@blueprint.get("/console/recordings")
@declare("getConsoleRecordings", "The console's recordings", tag="Console", security=Who.NONE, responses=GO_ON)
async def recordings_page() -> Response:
    who = viewer()
    if who is None:
        return sign_in_first()
    return await page(
        "recordings.html",
        deletes=Permission.DELETE in who.permissions,
        downloads=Permission.DOWNLOAD in who.permissions,
    )


@blueprint.get("/recording/<recording_id>")
@declare(
    "getRecordingPage",
    "The player page of a recording (a shared recording URL opens it)",
    tag="Recordings",
    security=Who.NONE,
    responses={200: PAGE, 404: error("Not a recording id")},
)
async def player_page(recording_id: str) -> Response:
    """Open the URL `GET /api/v1/recordings/{recordingId}/url` gave: with its `secret` it needs no sign-in; without
    one, the console session's permissions apply (or the page asks to sign in)."""
    recording_id, problems = recording_id_problems(recording_id)
    if problems:
        raise recording_not_found(recording_id)
    secret = request.args.get("secret", "")[:MAX_SECRET_LENGTH]
    who = viewer()
    return await page(
        "player.html",
        recording_id=recording_id,
        secret=secret,
        shares=who is not None and not secret and Permission.PLAY in who.permissions,
        downloads=bool(secret) or (who is not None and Permission.DOWNLOAD in who.permissions),
        next=f"{prefix()}/recording/{quote(recording_id, safe='')}",
    )


@blueprint.get("/console/static/console.js")
@declare(
    "getConsoleScript",
    "The console's script",
    tag="Console",
    security=Who.NONE,
    responses={200: Answer("JavaScript", binary=("text/javascript",))},
)
async def script() -> Response:
    return static_file("console.js", "text/javascript; charset=utf-8")


@blueprint.get("/console/static/console.css")
@declare(
    "getConsoleStyle",
    "The console's stylesheet",
    tag="Console",
    security=Who.NONE,
    responses={200: Answer("CSS", binary=("text/css",))},
)
async def style() -> Response:
    return static_file("console.css", "text/css; charset=utf-8")


def static_file(name: str, content_type: str) -> Response:
    body = STATIC.joinpath(name).read_bytes()
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(body, content_type=content_type, headers=headers)
