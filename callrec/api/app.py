"""The API's app factory: blueprints, auth, and one error handler per error family."""

from __future__ import annotations

import logging

from quart import Blueprint, Quart, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from callrec.api import health, monitoring, openapi, publish_page, recorders, whip
from callrec.api.auth import authenticate, load_room_scope, refuse_revoked_member_token
from callrec.api.console import pages as console
from callrec.api.console.session import SessionBridge
from callrec.api.errors import ApiError, from_service, unauthorized
from callrec.api.file_responses import PathSend
from callrec.api.guard import BoundedJSONProvider, HttpGuard
from callrec.api.meet import files, inbox, media, members, previews, recordings, rooms, sharing, users
from callrec.api.recorder_backend import callbacks
from callrec.api.recorder_backend.upload import StoreUpload
from callrec.api.services import Services
from callrec.api.talk import capabilities as talk_capabilities
from callrec.api.talk import conversations as talk_conversations
from callrec.api.talk import endpoints as talk
from callrec.api.talk import notifications as talk_notifications
from callrec.api.webhooks import livekit
from callrec.domain.errors import ServiceUnavailable
from callrec.logs.http import log_requests
from callrec.metrics import API_HTTP
from callrec.metrics.http import HttpMetrics
from callrec.recordings.errors import RecordingError
from callrec.tracing.web import instrument_app

log = logging.getLogger(__name__)

# Routes that answer without credentials: the route itself checks what stands in for them.
ANONYMOUS_ENDPOINTS = {
    "api_v1.rooms.member_token",  # the room's secret
    "api_v1.recordings.get_recording",  # a recording's secret (sharing.authorized_recording)
    "api_v1.media.get_media",
    "api_v1.files.download_recording",
    "api_v1.previews.get_poster",
    "api_v1.previews.get_thumbnails",
    "api_v1.previews.get_thumbnail_sprite",
    "api_v1.whip.whip_options",  # WHIP: what the endpoint takes
    "api_v1.whip.whip_patch",  # WHIP: 405, no trickle ICE
}

# The routes that start a recording, by front door: their answers are `callrec_recording_start_seconds` too.
START_ENDPOINTS = {"api_v1.recordings.start_recording": "meet", "talk.start": "talk"}


def create_app(svc: Services) -> Quart:
    app = Quart("callrec")
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=60)
    app.extensions["callrec"] = svc
    app.json = BoundedJSONProvider(app)  # too deeply nested JSON is malformed (400), not a crash
    svc.settings.require_api_key()

    # Member tokens of a closed or deleted room, or from before a secret rotation, are refused at every door.
    app.before_request(refuse_revoked_member_token)
    api_v1 = Blueprint("api_v1", __name__, url_prefix="/api/v1")

    @api_v1.before_request
    async def authenticate_caller() -> None:
        if request.endpoint in whip.PUBLISH_TOKEN_ENDPOINTS:
            g.principal = None  # `Authorization: Bearer` carries a publish token here (`whip.publisher_of`)
            return
        g.principal = authenticate()
        if g.principal is None and request.endpoint not in ANONYMOUS_ENDPOINTS:
            raise unauthorized()
        await load_room_scope()  # a user-role token: the rooms it reaches (auth.confine)

    for bp in (
        users.blueprint,
        rooms.blueprint,
        members.blueprint,
        inbox.blueprint,
        files.blueprint,
        sharing.blueprint,
        recordings.blueprint,
        media.blueprint,
        previews.blueprint,
        whip.blueprint,
        recorders.blueprint,
    ):
        api_v1.register_blueprint(bp)
    app.register_blueprint(api_v1)
    app.register_blueprint(callbacks.blueprint)
    app.register_blueprint(talk.blueprint)
    app.register_blueprint(talk_conversations.blueprint)
    app.register_blueprint(talk_capabilities.blueprint)
    app.register_blueprint(talk_notifications.blueprint)
    app.register_blueprint(livekit.blueprint)  # signed by LiveKit; 404 unless its API key is set
    app.register_blueprint(health.blueprint)
    app.register_blueprint(monitoring.blueprint)  # GET /metrics: CALLREC_METRICS_TOKEN or CALLREC_METRICS_PUBLIC
    app.register_blueprint(openapi.blueprint)  # GET /openapi.json and /docs, no credentials
    app.register_blueprint(publish_page.blueprint)  # GET /rooms/<id>/publish: the WHIP page, no credentials
    app.register_blueprint(console.blueprint)  # /console/...: the web console; /recording/<id>: its player

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> tuple[Response, int, dict[str, str]]:
        return jsonify(exc.body()), exc.status, exc.headers

    @app.errorhandler(RecordingError)
    @app.errorhandler(ServiceUnavailable)
    async def service_error(exc: RecordingError | ServiceUnavailable) -> tuple[Response, int, dict[str, str]]:
        return await api_error(from_service(exc))

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        return jsonify({"error": exc.name, "message": exc.description or exc.name}), status

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify({"error": "Internal Server Error", "message": "Unexpected error; see the server log"}), 500

    app.asgi_app = PathSend(app.asgi_app)  # type: ignore[method-assign,assignment,arg-type]
    app.asgi_app = StoreUpload(app.asgi_app, svc)  # type: ignore[method-assign,assignment,arg-type]
    # The console's session cookie as the API's credential header (with its CSRF check), ahead of auth.
    app.asgi_app = SessionBridge(app.asgi_app, svc.settings)  # type: ignore[method-assign,assignment,arg-type]
    # Outermost, so that it covers /store too: framing checks, security headers, CORS (preflight before auth).
    app.asgi_app = HttpGuard(app.asgi_app, svc.settings.cors_origins)  # type: ignore[method-assign,assignment,arg-type]
    instrument_app(app)  # around all of it: requests the layers above answer are traced too
    # Outside them: every answer is counted and timed by its route template, refusals included.
    app.asgi_app = HttpMetrics(app.asgi_app, app.url_map, API_HTTP, START_ENDPOINTS)  # type: ignore[method-assign,assignment,arg-type]
    log_requests(app)  # outermost: a line per request, also for those the guard or the upload answer
    return app
