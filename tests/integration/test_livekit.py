"""CALLREC_EGRESS=livekit: the egress activities against a loopback LiveKit, and LiveKit's webhooks driving recordings.

No LiveKit server runs here. `FakeLiveKit` plays its Twirp egress API as livekit-server answers it: it checks
the path, the `Authorization: Bearer` JWT (with livekit-api's own `TokenVerifier`, and the `roomRecord` grant
that the egress endpoints need), decodes the protobuf body with livekit.protocol's classes, keeps every request
and answers an `EgressInfo`, or a Twirp error (JSON `{code, msg}` with its HTTP status).

The webhooks are signed as livekit-server signs them: a JWT issued with the API key, signed with the secret,
carrying the base64 sha256 of the body, made with livekit-api's `AccessToken`; the bodies are the events'
protobuf JSON.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import jwt
import pytest
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from livekit.api import AccessToken, TokenVerifier
from livekit.api.access_token import Claims
from livekit.protocol.egress import (
    EgressInfo,
    EgressStatus,
    EncodedFileType,
    EncodingOptionsPreset,
    FileInfo,
    ListEgressRequest,
    ListEgressResponse,
    RoomCompositeEgressRequest,
    StopEgressRequest,
)
from livekit.protocol.models import AudioCodec, ParticipantInfo, Room, VideoCodec
from livekit.protocol.webhook import WebhookEvent
from quart import Quart, Response, request
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from callrec.activities.livekit_egress import LiveKitEgressActivities
from callrec.api.app import create_app
from callrec.api.services import Services
from callrec.domain.layout import EncodingPreset, Layout
from callrec.domain.recording import EgressStart, EgressStop, RecordingKind
from callrec.domain.settings import Settings
from callrec.servers import serve_app
from callrec.storage.catalog import Catalog
from callrec.storage.rows import RecordingRow, RoomRow
from tests.conftest import API_KEY, SECRET, Stack, StackFactory, free_port, s3_overrides, wait_until_up
from tests.helpers import create_room, mp4_bytes, wait_for_status

LK_KEY = "APIcallrecTest"
LK_SECRET = "callrec-livekit-test-secret-0123456789abcdef"
TWIRP = "/twirp/livekit.Egress/"
REQUESTS: dict[str, type[Message]] = {
    "StartRoomCompositeEgress": RoomCompositeEgressRequest,
    "StopEgress": StopEgressRequest,
    "ListEgress": ListEgressRequest,
}
ACTIVE = (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE)


# ------------------------------------------------------------------ a loopback LiveKit


@dataclass
class Received:
    method: str
    claims: Claims
    headers: dict[str, str]
    body: Message


@dataclass
class FakeLiveKit:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why requests were refused before reaching a method
    failures: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # method -> next answer's error
    # Called with a new egress before the start is answered: LiveKit's webhook can beat its own answer.
    before_answer: Callable[[EgressInfo], Awaitable[None]] | None = None
    egresses: dict[str, EgressInfo] = field(default_factory=dict)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Quart:
        app = Quart("fake-livekit")

        @app.get("/")
        async def root() -> str:
            return "OK"

        @app.post(f"{TWIRP}<method>")
        async def twirp(method: str) -> Response:
            raw: bytes = await request.body
            authorization = request.headers.get("Authorization", "")
            if not authorization.startswith("Bearer "):
                return self._refuse(401, "unauthenticated", "no bearer token")
            try:
                claims = TokenVerifier(LK_KEY, LK_SECRET).verify(authorization.removeprefix("Bearer "))
            except jwt.PyJWTError as exc:
                return self._refuse(401, "unauthenticated", f"invalid token: {exc}")
            if claims.video is None or not claims.video.room_record:
                return self._refuse(403, "permission_denied", "the token lacks the roomRecord grant")
            if request.content_type != "application/protobuf":
                return self._refuse(400, "malformed", f"content type {request.content_type}")
            if method not in REQUESTS:
                return self._refuse(404, "bad_route", f"no method {method}")
            body = REQUESTS[method].FromString(raw)
            self.received.append(Received(method, claims, dict(request.headers), body))
            if (failure := self.failures.pop(method, None)) is not None:
                return twirp_error(*failure)
            if isinstance(body, RoomCompositeEgressRequest) and self.before_answer is not None:
                info = self._new_egress(body)
                await self.before_answer(info)
                return protobuf(info)
            return self._answer(body)

        return app

    def _refuse(self, status: int, code: str, message: str) -> Response:
        self.refused.append(message)
        return twirp_error(status, code, message)

    def _answer(self, body: Message) -> Response:
        answer: Message
        if isinstance(body, RoomCompositeEgressRequest):
            answer = self._new_egress(body)
        elif isinstance(body, StopEgressRequest):
            info = self.egresses.get(body.egress_id)
            if info is None:
                return twirp_error(404, "not_found", "egress does not exist")
            if info.status not in ACTIVE:
                name = EgressStatus.Name(info.status)
                return twirp_error(412, "failed_precondition", f"egress with status {name} cannot be stopped")
            info.status = EgressStatus.EGRESS_ENDING
            answer = info
        else:
            assert isinstance(body, ListEgressRequest)
            items = [
                info
                for info in self.egresses.values()
                if info.room_name == body.room_name and (not body.active or info.status in ACTIVE)
            ]
            answer = ListEgressResponse(items=items)
        return protobuf(answer)

    def _new_egress(self, body: RoomCompositeEgressRequest) -> EgressInfo:
        egress_id = f"EG_{uuid.uuid4().hex[:12]}"
        info = EgressInfo(
            egress_id=egress_id,
            room_id=f"RM_{uuid.uuid4().hex[:8]}",
            room_name=body.room_name,
            status=EgressStatus.EGRESS_STARTING,
            room_composite=body,
        )
        self.egresses[egress_id] = info
        return info

    def calls(self, method: str) -> list[Received]:
        return [r for r in self.received if r.method == method]

    async def wait_for(self, method: str, count: int = 1) -> Received:
        for _ in range(400):
            if len(found := self.calls(method)) >= count:
                return found[count - 1]
            await asyncio.sleep(0.025)
        raise AssertionError(f"LiveKit got no {method} request (refused: {self.refused})")


def protobuf(message: Message) -> Response:
    return Response(message.SerializeToString(), 200, content_type="application/protobuf")


def twirp_error(status: int, code: str, message: str) -> Response:
    return Response(f'{{"code": "{code}", "msg": "{message}"}}', status, content_type="application/json")


@pytest.fixture
async def fake_livekit() -> AsyncIterator[FakeLiveKit]:
    server = FakeLiveKit()

    async def until_stopped() -> None:
        await server.stop.wait()

    task = asyncio.create_task(serve_app(server.app(), "127.0.0.1", server.port, until_stopped))
    await wait_until_up(server.url)
    yield server
    server.stop.set()
    await task


# ------------------------------------------------------------------ (a) the activities

S3 = {"s3_endpoint": "127.0.0.1:9000", "s3_access_key": "minio-ak", "s3_secret_key": "minio-sk", "s3_bucket": "recs"}


def livekit_settings(tmp_path: Path, url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "api_key": API_KEY,
        "egress": "livekit",
        "livekit_url": url,
        "livekit_api_key": LK_KEY,
        "livekit_api_secret": LK_SECRET,
    }
    return Settings(**(values | S3 | overrides))  # type: ignore[arg-type]


async def add_recording(catalog: Catalog, kind: RecordingKind = RecordingKind.VIDEO) -> RecordingRow:
    room_id = f"room-{uuid.uuid4().hex[:8]}"
    await catalog.add_room(RoomRow(room_id=room_id, room_name="Room", config={}, creation_date=1))
    recording_id = f"{room_id}--EG_{uuid.uuid4().hex[:10]}--{uuid.uuid4().hex[:6]}"
    row = RecordingRow(
        recording_id=recording_id,
        room_id=room_id,
        room_name="Room",
        status="starting",
        kind=kind.value,
        layout="grid",
        encoding="H264_720P_30",
        filename=f"{recording_id}.mp4",
        creation_date=1,
    )
    return await catalog.add_recording(row)


def egress_start(row: RecordingRow, kind: RecordingKind = RecordingKind.VIDEO, **fields: Any) -> EgressStart:
    values: dict[str, Any] = {
        "recording_id": row.recording_id,
        "room_id": row.room_id,
        "kind": kind,
        "layout": Layout.SPEAKER,
        "encoding": EncodingPreset.H264_1080P_30,
        "participants": [{"id": "alice", "name": "Alice"}],
        "owner": "alice",
    }
    return EgressStart.model_validate(values | fields)


async def test_start_and_stop_speak_livekits_twirp_api(
    fake_livekit: FakeLiveKit, catalog: Catalog, tmp_path: Path
) -> None:
    activities = LiveKitEgressActivities(livekit_settings(tmp_path, fake_livekit.url), catalog)
    row = await add_recording(catalog)
    env = ActivityEnvironment()
    await env.run(activities.start_egress, egress_start(row))

    start = await fake_livekit.wait_for("StartRoomCompositeEgress")
    assert fake_livekit.refused == []
    assert start.headers["Content-Type"] == "application/protobuf"
    assert start.claims.video is not None and start.claims.video.room_record
    body = cast(RoomCompositeEgressRequest, start.body)
    assert (body.room_name, body.layout, body.audio_only) == (row.room_id, "speaker", False)
    assert body.WhichOneof("options") == "preset" and body.preset == EncodingOptionsPreset.H264_1080P_30
    [output] = body.file_outputs
    assert output.file_type == EncodedFileType.MP4
    assert output.filepath == f"staging/{row.recording_id}/livekit.mp4"
    s3 = output.s3
    assert (s3.endpoint, s3.access_key, s3.secret, s3.bucket) == (
        "http://127.0.0.1:9000",
        "minio-ak",
        "minio-sk",
        "recs",
    )
    assert (s3.region, s3.force_path_style) == ("us-east-1", True)

    [egress_id] = fake_livekit.egresses
    stored = await catalog.get_recording(row.recording_id)
    assert stored is not None and stored.egress_id == egress_id
    assert (await catalog.recording_by_egress(egress_id)) is not None

    await env.run(activities.stop_egress, EgressStop(recording_id=row.recording_id, room_id=row.room_id))
    stop = await fake_livekit.wait_for("StopEgress")
    assert cast(StopEgressRequest, stop.body).egress_id == egress_id
    assert stop.claims.video is not None and stop.claims.video.room_record
    assert fake_livekit.egresses[egress_id].status == EgressStatus.EGRESS_ENDING

    # Stopping an egress that is already ending is done: LiveKit's egress_ended tells the rest.
    await env.run(activities.stop_egress, EgressStop(recording_id=row.recording_id, room_id=row.room_id))
    assert len(fake_livekit.calls("StopEgress")) == 2


async def test_audio_and_advanced_encoding(fake_livekit: FakeLiveKit, catalog: Catalog, tmp_path: Path) -> None:
    activities = LiveKitEgressActivities(livekit_settings(tmp_path, fake_livekit.url, s3_region="eu-1"), catalog)
    row = await add_recording(catalog, RecordingKind.AUDIO)
    advanced = {"video": {"width": 640, "height": 360, "framerate": 15, "codec": "H264_BASELINE", "bitrate": 800}}
    await ActivityEnvironment().run(
        activities.start_egress, egress_start(row, RecordingKind.AUDIO, encoding=advanced, layout=Layout.GRID)
    )
    body = cast(RoomCompositeEgressRequest, (await fake_livekit.wait_for("StartRoomCompositeEgress")).body)
    assert body.audio_only and body.layout == "grid"
    assert body.WhichOneof("options") == "advanced"
    assert (body.advanced.audio_codec, body.advanced.audio_bitrate, body.advanced.audio_frequency) == (
        AudioCodec.OPUS,
        128,
        48000,
    )
    [output] = body.file_outputs
    assert (output.file_type, output.filepath) == (EncodedFileType.OGG, f"staging/{row.recording_id}/livekit.ogg")
    assert output.s3.region == "eu-1"

    video = await add_recording(catalog)
    await ActivityEnvironment().run(activities.start_egress, egress_start(video, encoding=advanced))
    options = cast(RoomCompositeEgressRequest, (await fake_livekit.wait_for("StartRoomCompositeEgress", 2)).body)
    assert (options.advanced.width, options.advanced.height, options.advanced.framerate) == (640, 360, 15)
    assert (options.advanced.video_codec, options.advanced.video_bitrate) == (VideoCodec.H264_BASELINE, 800)
    assert options.advanced.key_frame_interval == 4.0
    assert options.advanced.audio_codec == AudioCodec.AAC


async def test_livekit_errors(fake_livekit: FakeLiveKit, catalog: Catalog, tmp_path: Path) -> None:
    activities = LiveKitEgressActivities(livekit_settings(tmp_path, fake_livekit.url), catalog)
    env = ActivityEnvironment()
    row = await add_recording(catalog)

    fake_livekit.failures["StartRoomCompositeEgress"] = (400, "invalid_argument", "unknown layout")
    with pytest.raises(ApplicationError) as rejected:
        await env.run(activities.start_egress, egress_start(row))
    assert (rejected.value.type, rejected.value.non_retryable) == ("EgressRejected", True)
    assert "invalid_argument" in rejected.value.message and "unknown layout" in rejected.value.message

    fake_livekit.failures["StartRoomCompositeEgress"] = (503, "unavailable", "no egress instance")
    with pytest.raises(RuntimeError, match="unavailable"):  # retried by the activity's retry policy
        await env.run(activities.start_egress, egress_start(row))

    # No egress was started for it: nothing to stop.
    with pytest.raises(ApplicationError) as unknown:
        await env.run(activities.stop_egress, EgressStop(recording_id=row.recording_id, room_id=row.room_id))
    assert (unknown.value.type, unknown.value.non_retryable) == ("EgressNotFound", True)

    # LiveKit lost the egress (a restart): not_found on stop.
    await catalog.set_egress_id(row.recording_id, "EG_forgotten")
    with pytest.raises(ApplicationError) as lost:
        await env.run(activities.stop_egress, EgressStop(recording_id=row.recording_id, room_id=row.room_id))
    assert (lost.value.type, lost.value.non_retryable) == ("EgressNotFound", True)
    assert cast(StopEgressRequest, fake_livekit.calls("StopEgress")[-1].body).egress_id == "EG_forgotten"

    fake_livekit.failures["StopEgress"] = (403, "permission_denied", "no")
    with pytest.raises(ApplicationError) as refused:
        await env.run(activities.stop_egress, EgressStop(recording_id=row.recording_id, room_id=row.room_id))
    assert (refused.value.type, refused.value.non_retryable) == ("EgressRejected", True)

    # A wrong secret: LiveKit answers unauthenticated, which is final.
    wrong = LiveKitEgressActivities(
        livekit_settings(tmp_path, fake_livekit.url, livekit_api_secret="not-the-secret-0123456789abcdef-0123"), catalog
    )
    with pytest.raises(ApplicationError) as unauthenticated:
        await env.run(wrong.start_egress, egress_start(row))
    assert unauthenticated.value.type == "EgressRejected" and "unauthenticated" in unauthenticated.value.message

    # Nobody listening: retried.
    unreachable = LiveKitEgressActivities(livekit_settings(tmp_path, f"http://127.0.0.1:{free_port()}"), catalog)
    with pytest.raises(RuntimeError, match="unreachable"):
        await env.run(unreachable.start_egress, egress_start(row))


async def test_a_retried_start_adopts_the_egress_it_started(
    fake_livekit: FakeLiveKit, catalog: Catalog, tmp_path: Path
) -> None:
    activities = LiveKitEgressActivities(livekit_settings(tmp_path, fake_livekit.url), catalog)
    row = await add_recording(catalog)
    first = ActivityEnvironment()
    await first.run(activities.start_egress, egress_start(row))
    [egress_id] = fake_livekit.egresses
    await catalog.set_egress_id(row.recording_id, "")  # as if the first attempt died before storing the id

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2)
    await retry.run(activities.start_egress, egress_start(row))
    assert len(fake_livekit.calls("StartRoomCompositeEgress")) == 1
    listed = cast(ListEgressRequest, (await fake_livekit.wait_for("ListEgress")).body)
    assert (listed.room_name, listed.active) == (row.room_id, True)
    stored = await catalog.get_recording(row.recording_id)
    assert stored is not None and stored.egress_id == egress_id

    # Once the id is stored, a retry asks LiveKit nothing.
    await retry.run(activities.start_egress, egress_start(row))
    assert len(fake_livekit.received) == 2


def test_livekit_egress_needs_its_settings(tmp_path: Path) -> None:
    catalog = cast(Catalog, None)
    with pytest.raises(SystemExit, match="LIVEKIT_API_SECRET"):
        LiveKitEgressActivities(livekit_settings(tmp_path, "http://lk", livekit_api_secret=None), catalog)
    with pytest.raises(SystemExit, match="S3"):
        LiveKitEgressActivities(livekit_settings(tmp_path, "http://lk", s3_endpoint=None), catalog)


# ------------------------------------------------------------------ (b) webhooks through the API


def sign(body: bytes, key: str = LK_KEY, secret: str = LK_SECRET) -> str:
    """The `Authorization` value livekit-server sends with a webhook."""
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return AccessToken(key, secret).with_sha256(digest).with_ttl(timedelta(minutes=5)).to_jwt()


def webhook(event: str, **fields: Any) -> WebhookEvent:
    return WebhookEvent(event=event, id=f"EV_{uuid.uuid4().hex[:12]}", created_at=1_700_000_000, **fields)


def joined(room_id: str, identity: str, name: str = "", left: bool = False, **fields: Any) -> WebhookEvent:
    participant = ParticipantInfo(sid=f"PA_{identity}", identity=identity, name=name, **fields)
    return webhook(
        "participant_left" if left else "participant_joined", room=Room(name=room_id), participant=participant
    )


async def send(hook: httpx.AsyncClient, event: WebhookEvent, authorization: str | None = None) -> httpx.Response:
    body = MessageToJson(event).encode()
    headers = {"Content-Type": "application/webhook+json", "Authorization": authorization or sign(body)}
    return await hook.post("/livekit/webhook", content=body, headers=headers)


async def livekit_stack(stacks: StackFactory, fake: FakeLiveKit, s3_endpoint: str) -> Stack:
    return await stacks.start(
        recorder=False,
        egress="livekit",
        livekit_url=fake.url,
        livekit_api_key=LK_KEY,
        livekit_api_secret=LK_SECRET,
        **s3_overrides(s3_endpoint),
    )


@pytest.fixture
async def hook(stacks: StackFactory, fake_livekit: FakeLiveKit, s3_endpoint: str) -> AsyncIterator[Any]:
    """A LiveKit stack and a client without any credential, as LiveKit calls the webhook."""
    stack = await livekit_stack(stacks, fake_livekit, s3_endpoint)
    async with httpx.AsyncClient(base_url=str(stack.api.base_url), timeout=60) as client:
        yield stack, client


async def participants(api: httpx.AsyncClient, room_id: str) -> list[str] | None:
    response = await api.get(f"/api/v1/rooms/{room_id}/call")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["participants"]]


async def start_recording(
    stack: Stack, hook: httpx.AsyncClient, fake: FakeLiveKit, room_id: str, early: bool = False, **config: Any
) -> tuple[str, EgressInfo]:
    """POST /recordings; LiveKit's egress_started once the start reached it (the answer waits for it).

    `early`: egress_started arrives before LiveKit answered the start, so before callrec knows the egress id.
    """
    body: dict[str, Any] = {"roomId": room_id} | ({"config": config} if config else {})
    count = len(fake.calls("StartRoomCompositeEgress")) + 1

    async def egress_started(info: EgressInfo) -> None:
        response = await send(hook, webhook("egress_started", egress_info=info))
        assert (response.status_code, response.json()) == (200, {"handled": "egress_started"})

    fake.before_answer = egress_started if early else None
    starting = asyncio.create_task(stack.api.post("/api/v1/recordings", json=body))
    request = cast(RoomCompositeEgressRequest, (await fake.wait_for("StartRoomCompositeEgress", count)).body)
    [info] = [i for i in fake.egresses.values() if i.room_composite == request and i.room_name == room_id]
    if not early:
        await egress_started(info)
    started = await starting
    fake.before_answer = None
    assert started.status_code == 201, started.text
    recording: dict[str, Any] = started.json()
    assert recording["status"] == "active"
    return recording["recordingId"], info


async def upload_and_end(stack: Stack, hook: httpx.AsyncClient, info: EgressInfo, data: bytes) -> WebhookEvent:
    """What LiveKit does after a stop: uploads the file at the requested path, then says egress_ended."""
    key = info.room_composite.file_outputs[0].filepath

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    await stack.store.put_stream(key, chunks())
    ended = EgressInfo()
    ended.CopyFrom(info)
    ended.status = EgressStatus.EGRESS_COMPLETE
    location = f"http://{stack.settings.s3_endpoint}/{stack.settings.s3_bucket}/{key}"
    ended.file_results.append(FileInfo(filename=key, size=len(data), location=location, duration=1_000_000_000))
    event = webhook("egress_ended", egress_info=ended)
    response = await send(hook, event)
    assert response.status_code == 200, response.text
    assert response.json() == {"handled": "egress_ended"}
    return event


async def test_webhooks_drive_a_livekit_recording(
    hook: tuple[Stack, httpx.AsyncClient], fake_livekit: FakeLiveKit, tmp_path: Path
) -> None:
    stack, client = hook
    room_id = await create_room(stack.api)
    for identity, name in (("alice", "Alice"), ("bob", "")):
        response = await send(client, joined(room_id, identity, name))
        assert (response.status_code, response.json()) == (200, {"handled": "participant_joined"})
    call = (await stack.api.get(f"/api/v1/rooms/{room_id}/call")).json()
    assert call["participants"] == [
        {"id": "alice", "name": "Alice", "role": "speaker"},
        {"id": "bob", "name": "bob", "role": "speaker"},
    ]

    recording_id, info = await start_recording(stack, client, fake_livekit, room_id, layout="single-speaker")
    request = info.room_composite
    assert (request.room_name, request.layout, request.audio_only) == (room_id, "single-speaker", False)
    assert request.WhichOneof("options") == "advanced"  # create_room's small advanced encoding
    assert (request.advanced.width, request.advanced.height, request.advanced.framerate) == (320, 180, 10)
    assert request.advanced.key_frame_interval == 1.0
    [output] = request.file_outputs
    assert output.filepath == f"staging/{recording_id}/livekit.mp4"
    assert (output.s3.bucket, output.s3.endpoint) == (stack.settings.s3_bucket, f"http://{stack.settings.s3_endpoint}")
    row = await stack.catalog.get_recording(recording_id)
    assert row is not None and row.egress_id == info.egress_id

    updated = EgressInfo(egress_id=info.egress_id, room_name=room_id, status=EgressStatus.EGRESS_ACTIVE)
    assert (await send(client, webhook("egress_updated", egress_info=updated))).status_code == 200

    stopped = await stack.api.post(f"/api/v1/recordings/{recording_id}/stop")
    assert stopped.status_code == 202, stopped.text
    stop = await fake_livekit.wait_for("StopEgress")
    assert cast(StopEgressRequest, stop.body).egress_id == info.egress_id

    data = mp4_bytes(tmp_path)
    ended = await upload_and_end(stack, client, info, data)
    done = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert done["status"] == "complete", done
    assert done["size"] == len(data) and done["duration"] > 0
    media = await stack.api.get(f"/api/v1/recordings/{recording_id}/media")
    assert media.status_code == 200 and media.content == data
    assert await stack.store.list_keys(f"staging/{recording_id}/") == []

    replayed = await send(client, ended)
    assert (replayed.status_code, replayed.json()) == (200, {"ignored": "replayed event"})
    assert len(fake_livekit.calls("StartRoomCompositeEgress")) == 1 and len(fake_livekit.calls("StopEgress")) == 1
    # LiveKit's start stays a regular activity (a Talk recording server's is local): its retry finds the egress an
    # earlier attempt started by the attempt count, which a local activity run again after a lost task starts over.
    history = await stack.client.get_workflow_handle(recording_id).fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events]
    assert "start_egress" in scheduled


async def test_forged_and_replayed_webhooks(hook: tuple[Stack, httpx.AsyncClient]) -> None:
    stack, client = hook
    room_id = await create_room(stack.api)
    event = joined(room_id, "mallory", "Mallory")
    body = MessageToJson(event).encode()

    forged = [
        sign(body, secret="a-different-secret-0123456789abcdef"),  # not LiveKit's secret
        sign(body, key="APIsomeoneElse"),  # another key, however signed
        sign(body.replace(b"Mallory", b"Mallorz")),  # signed for other bytes
        "",
        "not-a-jwt",
    ]
    for authorization in forged:
        response = await client.post("/livekit/webhook", content=body, headers={"Authorization": authorization})
        assert response.status_code == 401, (authorization, response.text)
    changed = body.replace(b"Mallory", b"Mallorz")  # the body changed after it was signed
    response = await client.post("/livekit/webhook", content=changed, headers={"Authorization": sign(body)})
    assert response.status_code == 401
    assert await participants(stack.api, room_id) is None

    # Bearer, as other LiveKit SDKs send it, is accepted too.
    assert (await send(client, event, authorization=f"Bearer {sign(body)}")).status_code == 200
    assert await participants(stack.api, room_id) == ["mallory"]

    # A replay of an event handled before changes nothing.
    assert (await send(client, joined(room_id, "mallory", left=True))).status_code == 200
    assert await participants(stack.api, room_id) == []
    replayed = await send(client, event)
    assert (replayed.status_code, replayed.json()) == (200, {"ignored": "replayed event"})
    assert await participants(stack.api, room_id) == []


async def test_participants_and_room_finished(
    hook: tuple[Stack, httpx.AsyncClient], fake_livekit: FakeLiveKit, tmp_path: Path
) -> None:
    stack, client = hook
    room_id = await create_room(stack.api)
    assert (await send(client, joined(room_id, "alice", "Alice"))).status_code == 200
    assert (await send(client, joined(room_id, "bob", "Bob"))).status_code == 200
    egress = joined(room_id, "EG_recorder", kind=ParticipantInfo.Kind.EGRESS)
    assert (await send(client, egress)).json() == {"ignored": "egress participants are not in the call"}
    assert (await send(client, joined(room_id, "alice", "Alice Cooper"))).status_code == 200  # a rejoin
    assert await participants(stack.api, room_id) == ["alice", "bob"]
    assert (await stack.api.get(f"/api/v1/rooms/{room_id}/call")).json()["participants"][0]["name"] == "Alice Cooper"
    assert (await send(client, joined(room_id, "alice", left=True))).status_code == 200
    assert await participants(stack.api, room_id) == ["bob"]

    unknown = await send(client, joined("no-such-room", "carol", "Carol"))
    assert (unknown.status_code, unknown.json()) == (200, {"ignored": "unknown room 'no-such-room'"})
    assert (await send(client, webhook("track_published", room=Room(name=room_id)))).status_code == 200

    recording_id, info = await start_recording(stack, client, fake_livekit, room_id, early=True)
    row = await stack.catalog.get_recording(recording_id)
    assert row is not None and row.egress_id == info.egress_id
    finished = await send(client, webhook("room_finished", room=Room(name=room_id)))
    assert (finished.status_code, finished.json()) == (200, {"handled": "room_finished"})
    assert await participants(stack.api, room_id) is None
    stop = await fake_livekit.wait_for("StopEgress")
    assert cast(StopEgressRequest, stop.body).egress_id == info.egress_id
    ending = await wait_for_status(stack.api, recording_id, {"ending"})
    assert ending["endDate"] is not None

    await upload_and_end(stack, client, info, mp4_bytes(tmp_path))
    done = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert done["status"] == "complete", done


async def test_failed_egress_and_refused_start(
    hook: tuple[Stack, httpx.AsyncClient], fake_livekit: FakeLiveKit
) -> None:
    stack, client = hook
    room_id = await create_room(stack.api)
    assert (await send(client, joined(room_id, "alice", "Alice"))).status_code == 200

    recording_id, info = await start_recording(stack, client, fake_livekit, room_id)
    failed_info = EgressInfo()
    failed_info.CopyFrom(info)
    failed_info.status = EgressStatus.EGRESS_FAILED
    failed_info.error = "could not upload the file: access denied"
    assert (await send(client, webhook("egress_ended", egress_info=failed_info))).status_code == 200
    failed = await wait_for_status(stack.api, recording_id, {"complete", "failed"})
    assert (failed["status"], failed["error"], failed["errorCode"]) == ("failed", "recorder_failed", 500)
    assert "could not upload the file: access denied" in failed["details"]
    late = await send(client, webhook("egress_started", egress_info=info))  # its workflow has ended
    assert (late.status_code, late.json()) == (200, {"ignored": f"recording {recording_id} is over"})
    unknown = EgressInfo(egress_id="EG_unknown", room_name=room_id, status=EgressStatus.EGRESS_STARTING)
    ignored = await send(client, webhook("egress_started", egress_info=unknown))
    assert (ignored.status_code, ignored.json()) == (200, {"ignored": "unknown egress 'EG_unknown'"})

    fake_livekit.failures["StartRoomCompositeEgress"] = (400, "invalid_argument", "room does not exist")
    refused = await stack.api.post("/api/v1/recordings", json={"roomId": room_id})
    assert refused.status_code == 503, refused.text
    [row] = [r for r in await stack.catalog.recordings(room_id=room_id) if r.recording_id != recording_id]
    assert (row.status, row.error) == ("failed", "egress_unavailable")
    assert row.details is not None and "room does not exist" in row.details
    # A 4xx is final: the start was not retried.
    assert len(fake_livekit.calls("StartRoomCompositeEgress")) == 2


async def test_the_receiver_is_off_without_livekit_keys(tmp_path: Path) -> None:
    settings = Settings(api_key=API_KEY, recording_secret=SECRET, data_dir=tmp_path)
    none = cast(Any, None)
    app = create_app(Services(settings=settings, catalog=none, store=none, temporal=none))
    body = MessageToJson(joined("room", "alice")).encode()
    response = await app.test_client().post("/livekit/webhook", data=body, headers={"Authorization": sign(body)})
    assert response.status_code == 404
