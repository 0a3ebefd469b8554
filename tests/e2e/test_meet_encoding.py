"""Meet's advanced encoding end to end: validated with Meet's messages, laid over the room's config field by field,
and really used by the built-in recorder (the stored file has the asked size, rate, profile, GOP and audio rate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av

from tests.conftest import StackFactory
from tests.helpers import join, record

ROOM_ENCODING = {  # a whole Meet `MeetRecordingEncodingOptions` object
    "video": {
        "width": 320,
        "height": 180,
        "framerate": 15,
        "codec": "H264_HIGH",
        "bitrate": 400,
        "keyFrameInterval": 1,
        "depth": 24,
    },
    "audio": {"codec": "OPUS", "bitrate": 64, "frequency": 44100},
}


def _detail(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "Unprocessable Entity" and body["message"] == "Invalid request"
    detail: dict[str, str] = body["details"][0]
    return detail


async def test_advanced_encoding_is_validated_merged_and_recorded(stacks: StackFactory, tmp_path: Path) -> None:
    stack = await stacks.start()
    api = stack.api
    created = await api.post(
        "/api/v1/rooms", json={"roomName": "Encoding", "config": {"recording": {"encoding": ROOM_ENCODING}}}
    )
    assert created.status_code == 201, created.text
    room_id = created.json()["roomId"]
    config = await api.get(f"/api/v1/rooms/{room_id}/config")
    assert config.json()["recording"]["encoding"] == ROOM_ENCODING  # Meet's object comes back as sent
    await join(api, room_id, "Alice")

    # Meet's wording for Meet's rules; nothing starts
    start = "/api/v1/recordings"
    bad_preset = _detail(await api.post(start, json={"roomId": room_id, "config": {"encoding": "H264_4K"}}))
    assert bad_preset["field"] == "config.encoding"
    assert bad_preset["message"].startswith("Invalid encoding preset. Must be one of: H264_720P_30, H264_720P_60")
    not_object = _detail(await api.post(start, json={"roomId": room_id, "config": {"encoding": 7}}))
    assert not_object["message"] == "Encoding must be either a preset string or an encoding configuration object"
    negative = _detail(
        await api.post(start, json={"roomId": room_id, "config": {"encoding": {"video": {"bitrate": -1}}}})
    )
    assert negative == {"field": "config.encoding.video.bitrate", "message": "Video bitrate must be a positive number"}
    codec = _detail(await api.post(start, json={"roomId": room_id, "config": {"encoding": {"audio": {"codec": "X"}}}}))
    assert codec["field"] == "config.encoding.audio.codec"
    assert codec["message"] == "Invalid enum value. Expected 'DEFAULT_AC' | 'OPUS' | 'AAC' | 'AC_MP3', received 'X'"
    # VP8 is one of Meet's codecs, but the built-in recorder writes MP4: refused clearly, before anything starts
    vp8 = _detail(await api.post(start, json={"roomId": room_id, "config": {"encoding": {"video": {"codec": "VP8"}}}}))
    assert vp8["field"] == "config.encoding.video.codec" and "cannot encode VP8" in vp8["message"]
    assert (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"] == []

    # only some fields: the others keep the room's values (frame rate, key frame interval, audio bitrate)
    override = {"video": {"width": 240, "height": 320, "codec": "H264_BASELINE"}, "audio": {"frequency": 24000}}
    done = await record(api, room_id, 3.0, encoding=override)
    assert done["status"] == "complete", done
    used = done["encoding"]  # what the built-in recorder wrote: AAC in MP4 although the room asked for Opus
    assert used == {
        "video": {
            "width": 240,
            "height": 320,
            "framerate": 15,
            "codec": "H264_BASELINE",
            "bitrate": 400,
            "keyFrameInterval": 1.0,
            "depth": 24,
        },
        "audio": {"codec": "AAC", "bitrate": 64, "frequency": 24000},
    }
    assert (await api.get(f"/api/v1/rooms/{room_id}/config")).json()["recording"]["encoding"] == ROOM_ENCODING

    path = tmp_path / "recording.mp4"
    path.write_bytes((await api.get(f"/api/v1/recordings/{done['recordingId']}/media")).content)
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 240, 320)
        assert "Baseline" in str(video.codec_context.profile)
        assert video.average_rate is not None and round(float(video.average_rate)) == 15
        assert (audio.codec_context.name, audio.sample_rate) == ("aac", 24000)
        keyframes = [packet.pts for packet in container.demux(video) if packet.pts is not None and packet.is_keyframe]
        duration_s = float(container.duration or 0) / 1_000_000
        time_base = float(video.time_base or 0)  # read while open: PyAV 18.1.1 refuses a closed container's streams
    assert duration_s > 2.0
    gaps = [(b - a) * time_base for a, b in zip(keyframes, keyframes[1:], strict=False)]
    assert gaps and max(gaps) <= 1.05  # a keyframe every second, as keyFrameInterval asked
    assert path.stat().st_size * 8 / duration_s < 2 * (400 + 64) * 1000  # within the asked bitrates

    # PUT with part of the options: the room's other values stay
    put = await api.put(
        f"/api/v1/rooms/{room_id}/config", json={"config": {"recording": {"encoding": {"video": {"bitrate": 2000}}}}}
    )
    assert put.status_code == 200, put.text
    after = put.json()["recording"]["encoding"]
    assert after["video"] == ROOM_ENCODING["video"] | {"bitrate": 2000, "keyFrameInterval": 1.0}
    assert after["audio"] == ROOM_ENCODING["audio"]


async def test_an_encoding_no_recorder_can_ever_take_is_refused_saying_so(stacks: StackFactory) -> None:
    stack = await stacks.start(recorder_capacity=1.0)
    api = stack.api
    room = await api.post("/api/v1/rooms", json={"roomName": "Big"})
    room_id = room.json()["roomId"]
    await join(api, room_id, "Alice")
    big = await api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"encoding": "H264_1080P_30"}})
    assert big.status_code == 503 and big.json()["code"] == "no_recorder_capacity", big.text
    message = big.json()["message"]
    assert "it costs 2.25 and the largest recorder has a capacity of 1 (CALLREC_RECORDER_CAPACITY)" in message
    assert "Choose a smaller encoding" in message and "Try again later" not in message
    assert (await api.get("/api/v1/recordings", params={"roomId": room_id})).json()["recordings"] == []
    fits = await api.post("/api/v1/recordings", json={"roomId": room_id, "config": {"encoding": "H264_720P_30"}})
    assert fits.status_code == 201, fits.text
    # Now the recorder is full: the next one could start once it has room again, and is told so.
    other = (await api.post("/api/v1/rooms", json={"roomName": "Other"})).json()["roomId"]
    await join(api, other, "Bob")
    busy = await api.post("/api/v1/recordings", json={"roomId": other, "config": {"encoding": "H264_720P_30"}})
    assert busy.status_code == 503 and "Try again later" in busy.json()["message"], busy.text
    assert (await api.post(f"/api/v1/recordings/{fits.json()['recordingId']}/stop")).status_code == 202
