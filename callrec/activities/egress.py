"""Egress through a recording server, driven as the Nextcloud Talk app drives one.

What goes on the wire is what Talk's `lib/Recording/BackendNotifier.php` sends and what the Talk
recording server (`nextcloud-talk-recording`, `Server.py`) accepts:

- `POST {server}/api/v1/room/{token}` with a JSON body, compact as PHP's `json_encode` writes it:
  `{"type":"start","start":{"status":1|2,"owner":"<user id>","actor":{"type":"users","id":"<user id>"}}}`
  or `{"type":"stop","stop":{"actor":{"type":"users"|"guests","id":"<who>"}}}` when someone stopped it, and
  `{"type":"stop","stop":[]}` (PHP's empty array) when nobody did (the call ended, the room went away);
- headers `Talk-Recording-Random` (64 characters, as Talk's), `Talk-Recording-Checksum` (lowercase hex
  HMAC-SHA256 of random + body with the shared secret) and `Talk-Recording-Backend` (where the server
  calls back and uploads, with a trailing slash as Talk's base URL; the server also picks the secret by this URL
  and keys its recordings by it + token).

The recording server answers 200 `{}` (also to a repeated start and to a stop of a recording it is
already stopping), 400 to a body it cannot use (a missing `owner`/`actor`, or a body above its
`maxmessagesize`, 1024 bytes by default), 403 to a bad checksum or an unknown backend, 404 to a stop of
a recording it does not know. As in Talk: unreachable and 5xx are retried (Talk tries three times);
any other answer is final: `EgressRejected`, or `EgressNotFound` for a 404 to `stop` (Talk's
`RecordingNotFoundException`). Redirects are followed, as Talk's HTTP client does.

For callrec's built-in recorder (`extended`), the start also carries `recordingId`, `layout`, `encoding`
and `participants`, and the stop `recordingId`. The Talk recording server reads only the keys above and
ignores any other, but it refuses bodies above its message size limit, which the participant list could
pass: so a Talk recording server gets exactly Talk's body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.domain import signing
from callrec.domain.recording import EgressStart, EgressStop, RecordingKind

# Talk always sends a user id as the owner (the recording server hands it back as the upload's `owner`
# field, and Talk refuses an upload without one); this stands in for recordings started before callrec
# knew who started them.
DEFAULT_OWNER = "callrec"
TALK_STATUS = {RecordingKind.VIDEO: 1, RecordingKind.AUDIO: 2}


def encode(body: Mapping[str, object]) -> bytes:
    """The body as PHP's `json_encode` lays it out (no spaces); the checksum covers these exact bytes."""
    return json.dumps(body, separators=(",", ":")).encode()


class EgressActivities:
    def __init__(
        self, server_url: str, backend_url: str, secret: str, http: httpx.AsyncClient, *, extended: bool = True
    ) -> None:
        """`server_url`: the recording server; `backend_url`: the `Talk-Recording-Backend` it calls back;
        `extended`: add callrec's own fields (the built-in recorder needs them)."""
        self.server_url = server_url.rstrip("/")
        self.backend_url = backend_url.rstrip("/")
        self.secret = secret
        self.http = http
        self.extended = extended

    async def _send(self, room_id: str, body: Mapping[str, object]) -> httpx.Response:
        payload = encode(body)
        headers = {"Content-Type": "application/json"} | signing.signed_headers(self.secret, payload)
        headers[signing.BACKEND_HEADER] = f"{self.backend_url}/"
        url = f"{self.server_url}/api/v1/room/{room_id}"
        # Retried by the activity's retry policy; an ApplicationError, so its log line is one line, not a stack.
        try:
            response = await self.http.post(url, content=payload, headers=headers, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"recording server at {self.server_url} unreachable: {exc!r}", type="RecordingServerUnavailable"
            ) from exc
        if response.status_code >= 500:
            raise ApplicationError(
                f"recording server answered {response.status_code}: {response.text[:200]}",
                type="RecordingServerUnavailable",
            )
        return response

    @activity.defn
    async def start_egress(self, request: EgressStart) -> None:
        owner = request.owner or DEFAULT_OWNER
        start: dict[str, object] = {
            "status": TALK_STATUS[request.kind],
            "owner": owner,
            "actor": {"type": "users", "id": owner},  # Talk: the participant who started it
        }
        if self.extended:
            start |= {
                "recordingId": request.recording_id,
                "layout": request.layout.value,
                "encoding": request.model_dump(mode="json", by_alias=True)["encoding"],
                "participants": [p.model_dump(mode="json") for p in request.participants],
            }
        response = await self._send(request.room_id, {"type": "start", "start": start})
        if not response.is_success:
            raise ApplicationError(
                f"recording server rejected the start ({response.status_code}): {response.text[:200]}",
                type="EgressRejected",
                non_retryable=True,
            )

    @activity.defn
    async def stop_egress(self, request: EgressStop) -> None:
        stop: dict[str, object] = {"recordingId": request.recording_id} if self.extended else {}
        if request.actor is not None:
            stop["actor"] = {"type": request.actor.type, "id": request.actor.id}
        response = await self._send(request.room_id, {"type": "stop", "stop": stop or []})
        if response.status_code == 404:
            raise ApplicationError(
                "recording server does not know this recording", type="EgressNotFound", non_retryable=True
            )
        if not response.is_success:
            raise ApplicationError(
                f"recording server rejected the stop ({response.status_code}): {response.text[:200]}",
                type="EgressRejected",
                non_retryable=True,
            )
