"""`GET /recording/{recordingId}?secret=...`: the page a shared recording URL opens (`GET /recordings/{id}/url`
answers it, on the path OpenVidu Meet's app serves its player).

Plain HTML (`static/player.html`): a video player and a download link on the API's media endpoints, with the
URL's secret passed on as `recordingSecret`, so the media endpoints decide who may watch (the public secret lets
anyone in while the room allows it, the private one needs a signed-in caller). The page needs no credentials and
shows nothing but the recording id of its URL; it is never cached, never framed, sends no referrer (its URL
holds a secret), and its style runs under a per-response nonce.
"""

from __future__ import annotations

import secrets
from importlib import resources
from urllib.parse import quote, urlsplit

from quart import Blueprint, Response, render_template_string, request

from callrec.api.baseurl import public_base
from callrec.api.errors import recording_not_found
from callrec.api.operations import Answer, Who, declare, error
from callrec.api.validation import recording_id_problems

blueprint = Blueprint("player_page", __name__)

TEMPLATE = resources.files("callrec.api").joinpath("static/player.html").read_text(encoding="utf-8")
MAX_SECRET_LENGTH = 256


def _headers(nonce: str) -> dict[str, str]:
    policy = (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; "
        "media-src 'self'; "
        "img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


@blueprint.get("/recording/<recording_id>")
@declare(
    "getRecordingPage",
    "The player page of a shared recording URL",
    tag="Recordings",
    security=Who.NONE,
    responses={
        200: Answer("The page (HTML)", binary=("text/html",)),
        404: error("Not a recording id"),
    },
)
async def player_page(recording_id: str) -> Response:
    """Open the URL `GET /api/v1/recordings/{recordingId}/url` gave; without its `secret` the media endpoints ask
    for credentials, which a browser does not send, so the page says so."""
    recording_id, problems = recording_id_problems(recording_id)
    if problems:
        raise recording_not_found(recording_id)
    secret = request.args.get("secret", "")[:MAX_SECRET_LENGTH]
    prefix = urlsplit(public_base()).path  # the API behind a path (`CALLREC_PUBLIC_URL=https://host/callrec`)
    media = f"{prefix}/api/v1/recordings/{quote(recording_id, safe='')}"
    query = f"?recordingSecret={quote(secret, safe='')}" if secret else ""
    nonce = secrets.token_urlsafe(18)
    html = await render_template_string(
        TEMPLATE,
        recording_id=recording_id,
        play_url=f"{media}/media{query}",
        download_url=f"{media}/download{query}",
        has_secret=bool(secret),
        nonce=nonce,
    )
    return Response(html, content_type="text/html; charset=utf-8", headers=_headers(nonce))
