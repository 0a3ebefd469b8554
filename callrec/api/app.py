"""The API's app factory: blueprints, auth, and one error handler per error family."""

from __future__ import annotations

import hmac
import logging

from quart import Blueprint, Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from callrec.api import files, health, media, recorder_backend, recordings, rooms
from callrec.api.errors import ApiError, invalid_api_key, unauthorized
from callrec.api.services import Services
from callrec.api.upload import StoreUpload

log = logging.getLogger(__name__)


def create_app(svc: Services) -> Quart:
    app = Quart("callrec")
    app.config.update(MAX_CONTENT_LENGTH=1024 * 1024, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=60)
    app.extensions["callrec"] = svc
    api_key = svc.settings.require_api_key()

    api_v1 = Blueprint("api_v1", __name__, url_prefix="/api/v1")

    @api_v1.before_request
    async def require_api_key() -> None:
        given = request.headers.get("X-API-KEY")
        if given is None:
            raise unauthorized()
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise invalid_api_key()

    for bp in (rooms.blueprint, files.blueprint, recordings.blueprint, media.blueprint):
        api_v1.register_blueprint(bp)
    app.register_blueprint(api_v1)
    app.register_blueprint(recorder_backend.blueprint)
    app.register_blueprint(health.blueprint)

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> tuple[Response, int, dict[str, str]]:
        return jsonify(exc.body()), exc.status, exc.headers

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        return jsonify({"error": exc.name, "message": exc.description or exc.name}), status

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify({"error": "Internal Server Error", "message": "Unexpected error; see the server log"}), 500

    app.asgi_app = StoreUpload(app.asgi_app, svc)  # type: ignore[method-assign,assignment,arg-type]
    return app
