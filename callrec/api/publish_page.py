"""`GET /rooms/{roomId}/publish`: a page that publishes this browser's camera and microphone into a room by WHIP.

Plain HTML and JavaScript (`static/publish.html`): it reads the publish token from the URL fragment (which
browsers never send) or a form field, shows the local preview, POSTs the offer to the room's WHIP endpoint of
this API, DELETEs the session on Stop, and polls `publish-status` to show whether the room is being recorded.
When the connection fails, stays disconnected for 3 s, or the offer gets no answer or a 5xx (a recorder restarted or
died), it publishes again by itself, with the same token and camera, backing off from 0.5 s to 5 s (or the answer's
Retry-After) until Stop; a 401/403/404/409/410 (token revoked or expired, room gone or closed) ends it with the reason.
The page itself needs no credentials and says nothing about the room beyond the id in its URL; its script and
style run under a per-response nonce (Content-Security-Policy), and it may not be framed.
"""

from __future__ import annotations

import re
import secrets
from importlib import resources

from quart import Blueprint, Response, render_template_string

from callrec.api.errors import room_not_found
from callrec.api.operations import Answer, Who, declare, error

blueprint = Blueprint("publish_page", __name__)

ROOM_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
TEMPLATE = resources.files("callrec.api").joinpath("static/publish.html").read_text(encoding="utf-8")


def _headers(nonce: str) -> dict[str, str]:
    policy = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'nonce-{nonce}'; "
        "connect-src 'self'; "
        "media-src 'self' blob: mediastream:; "
        "img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(self), microphone=(self)",
        "Cache-Control": "no-store",
    }


@blueprint.get("/rooms/<room_id>/publish")
@declare(
    "getPublishPage",
    "A page that publishes this browser's camera and microphone into the room (WHIP)",
    tag="Publishing",
    security=Who.NONE,
    responses={
        200: Answer("The page (HTML); give it the publish token as `#token=...`", binary=("text/html",)),
        404: error("Not a room id"),
    },
)
async def publish_page(room_id: str) -> Response:
    """Open `/rooms/{roomId}/publish#token={token}` with a token from `POST /api/v1/rooms/{roomId}/publish-token`
    (or paste the token into the page). Browsers allow the camera on HTTPS pages and on localhost only."""
    if not ROOM_ID.match(room_id):
        raise room_not_found(room_id)
    nonce = secrets.token_urlsafe(18)
    html = await render_template_string(TEMPLATE, room_id=room_id, nonce=nonce)
    return Response(html, content_type="text/html; charset=utf-8", headers=_headers(nonce))
