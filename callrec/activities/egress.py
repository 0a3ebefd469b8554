"""Egress through a recording server that speaks the Talk recording-server protocol (the built-in recorder).

Requests are `POST {recorder}/api/v1/room/{token}` with `{"type": "start"|"stop", ...}`, signed with the
shared secret over random + body; `Talk-Recording-Backend` tells the server where to call back.
callrec extends the start body with the recording id, layout, encoding and participants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.domain import signing
from callrec.domain.recording import EgressStart, EgressStop, RecordingKind

ACTOR = {"type": "users", "id": "callrec"}
TALK_STATUS = {RecordingKind.VIDEO: 1, RecordingKind.AUDIO: 2}


class EgressActivities:
    def __init__(self, recorder_url: str, api_url: str, secret: str, http: httpx.AsyncClient) -> None:
        self.recorder_url = recorder_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.secret = secret
        self.http = http

    async def _send(self, room_id: str, body: Mapping[str, object]) -> httpx.Response:
        payload = json.dumps(body).encode()
        headers = signing.signed_headers(self.secret, payload) | {
            signing.BACKEND_HEADER: self.api_url,
            "Content-Type": "application/json",
        }
        try:
            response = await self.http.post(
                f"{self.recorder_url}/api/v1/room/{room_id}", content=payload, headers=headers
            )
        except httpx.HTTPError as exc:
            raise RuntimeError(f"recorder at {self.recorder_url} unreachable: {exc!r}") from exc
        if response.status_code >= 500:
            raise RuntimeError(f"recorder answered {response.status_code}: {response.text[:200]}")
        return response

    @activity.defn
    async def start_egress(self, request: EgressStart) -> None:
        body = {
            "type": "start",
            "start": {
                "status": TALK_STATUS[request.kind],
                "owner": None,
                "actor": ACTOR,
                "recordingId": request.recording_id,
                "layout": request.layout.value,
                "encoding": request.model_dump(mode="json", by_alias=True)["encoding"],
                "participants": [p.model_dump(mode="json") for p in request.participants],
            },
        }
        response = await self._send(request.room_id, body)
        if response.status_code >= 400:
            raise ApplicationError(
                f"recorder rejected the start ({response.status_code}): {response.text[:200]}",
                type="EgressRejected",
                non_retryable=True,
            )

    @activity.defn
    async def stop_egress(self, request: EgressStop) -> None:
        body = {"type": "stop", "stop": {"actor": ACTOR, "recordingId": request.recording_id}}
        response = await self._send(request.room_id, body)
        if response.status_code == 404:
            raise ApplicationError("recorder does not know this recording", type="EgressNotFound", non_retryable=True)
        if response.status_code >= 400:
            raise ApplicationError(
                f"recorder rejected the stop ({response.status_code})", type="EgressRejected", non_retryable=True
            )
