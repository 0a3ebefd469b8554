"""The built-in recorder refuses what it must not act on, keeps its files private and drops orphans (issue 14)."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import httpx
import pytest

from callrec.domain.settings import Settings
from callrec.servers import build_recorder
from tests.conftest import PUBLISH_SECRET, SECRET
from tests.integration.test_recorder import Backend, Running, run_recorder, send, signed, start_body, until


def stop_body(recording_id: str) -> dict[str, object]:
    return {"type": "stop", "stop": {"recordingId": recording_id}}


async def stop_and_wait_for_upload(running: Running, backend: Backend, room: str, recording_id: str) -> None:
    assert (await send(running.url, room, stop_body(recording_id))).status_code == 200
    await until(lambda: len(backend.uploads) == 1 and not running.recorder.stopping)


async def test_the_backend_header_picks_a_configured_backend_and_never_adds_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, second, stranger = Backend(), Backend(), Backend()
    async with run_recorder(tmp_path / "work", first, second, stranger, allowed=[first.url, second.url]) as running:
        # Another spelling of the second backend (scheme and host case, trailing slash) picks it.
        spelled = second.url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/"
        assert (await send(running.url, "room-1", start_body("rec-1"), backend=spelled)).status_code == 200
        await until(lambda: second.kinds() == ["started"])

        with caplog.at_level(logging.WARNING, logger="callrec.recorder.service"):
            refused = await send(running.url, "room-2", start_body("rec-2"), backend=stranger.url)
        assert refused.status_code == 403
        assert refused.json()["error"] == "backend" and "CALLREC_RECORDER_BACKENDS" in refused.json()["message"]
        assert stranger.url in caplog.text
        assert list(running.recorder.sessions) == ["rec-1"]

        await stop_and_wait_for_upload(running, second, "room-1", "rec-1")
        assert first.callbacks == [] and stranger.callbacks == [] and stranger.uploads == []
        assert second.kinds() == ["started", "stopped"]


async def test_a_replayed_start_is_refused(tmp_path: Path) -> None:
    backend = Backend()
    async with run_recorder(tmp_path / "work", backend) as running:
        payload, headers = signed(start_body("rec-1"))
        async with httpx.AsyncClient() as http:
            url = f"{running.url}/api/v1/room/room-1"
            assert (await http.post(url, content=payload, headers=headers)).status_code == 200
            await until(lambda: backend.kinds() == ["started"])
            replayed = await http.post(url, content=payload, headers=headers)
        assert (replayed.status_code, replayed.json()["error"]) == (403, "replayed")
        await stop_and_wait_for_upload(running, backend, "room-1", "rec-1")
        assert backend.kinds() == ["started", "stopped"]  # the replay started nothing and was not told `started`


async def test_every_request_the_recorder_sends_has_a_fresh_random(tmp_path: Path) -> None:
    backend = Backend(answers={"started": [503]})  # the first `started` is sent again
    async with run_recorder(tmp_path / "work", backend) as running:
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: backend.kinds() == ["started"])
        await stop_and_wait_for_upload(running, backend, "room-1", "rec-1")
    assert len(backend.randoms) == 4  # started (503), started, stopped, upload
    assert len(set(backend.randoms)) == 4


async def test_recording_ids_and_room_tokens_that_are_not_plain_identifiers_are_refused(tmp_path: Path) -> None:
    backend = Backend()
    async with run_recorder(tmp_path / "work", backend) as running:
        for recording_id in ("../x", "a/b", "..", "", "x" * 129):
            response = await send(running.url, "room-1", start_body(recording_id))
            assert (response.status_code, response.json()["error"]) == (400, "recordingId"), recording_id
        assert (await send(running.url, "room.1", start_body("rec-1"))).json()["error"] == "token"
        assert (await send(running.url, "room-1", stop_body("../rec-1"))).status_code == 400
        assert running.recorder.sessions == {} and backend.callbacks == []
    assert [p.name for p in tmp_path.iterdir()] == ["work"] and not list((tmp_path / "work").iterdir())


async def test_recordings_are_0600_files_in_a_0700_directory(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir(mode=0o755)
    workdir.chmod(0o755)
    backend = Backend(watch=workdir)
    async with run_recorder(workdir, backend) as running:
        assert workdir.stat().st_mode & 0o777 == 0o700
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: backend.kinds() == ["started"])
        assert (workdir / "rec-1.mp4").stat().st_mode & 0o777 == 0o600
        await stop_and_wait_for_upload(running, backend, "room-1", "rec-1")
    assert backend.modes_at_upload == {"work": 0o700, "rec-1.mp4": 0o600}  # the finished file too


async def test_partial_files_of_an_earlier_process_are_removed_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workdir = tmp_path / "recorder" / "rec-1"  # each recorder of the pool has its own directory, by its id
    (workdir / "sub").mkdir(parents=True)
    (workdir / "room-1--EG_abc--1.mp4").write_bytes(b"partial")
    (workdir / "sub" / "part").write_bytes(b"partial")
    settings = Settings(
        data_dir=tmp_path,
        recording_secret=SECRET,
        publish_secret=PUBLISH_SECRET,
        api_url="http://127.0.0.1:9",
        recorder_id="rec-1",
    )
    with caplog.at_level(logging.WARNING, logger="callrec.recorder.service"):
        async with httpx.AsyncClient() as http:
            await build_recorder(settings, http)
    assert list(workdir.iterdir()) == []
    assert "room-1--EG_abc--1.mp4" in caplog.text and "sub" in caplog.text


@pytest.mark.parametrize(("callback", "status"), [("progress", 404), ("started", 410)])
async def test_a_recording_the_backend_no_longer_knows_is_stopped_and_its_file_discarded(
    tmp_path: Path, callback: str, status: int
) -> None:
    backend = Backend(answers={callback: [status]})
    async with run_recorder(tmp_path / "work", backend, progress_every_s=0.2) as running:
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: not running.recorder.sessions and not running.recorder.stopping)
        await until(lambda: not any(t.name.startswith("recording:") for t in threading.enumerate()))
        assert not list((tmp_path / "work").iterdir())
        assert (await send(running.url, "room-1", stop_body("rec-1"))).status_code == 404  # nothing left to stop
    assert "stopped" not in backend.kinds() and backend.uploads == []


async def test_a_retried_start_sends_started_again(tmp_path: Path) -> None:
    backend = Backend()
    async with run_recorder(tmp_path / "work", backend) as running:
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: backend.kinds() == ["started"])
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: backend.kinds() == ["started", "started"])
        elsewhere = await send(running.url, "room-2", start_body("rec-1"))  # same id, another room: not a retry
        assert (elsewhere.status_code, elsewhere.json()["error"]) == (409, "recording")

        # The API refuses `started` for a recording that is no longer starting: a repeated one is not an orphan.
        backend.answers["started"] = [404]
        assert (await send(running.url, "room-1", start_body("rec-1"))).status_code == 200
        await until(lambda: backend.refused == [("started", 404)])
        await asyncio.sleep(0.3)
        assert list(running.recorder.sessions) == ["rec-1"] and (tmp_path / "work" / "rec-1.mp4").exists()
        await stop_and_wait_for_upload(running, backend, "room-1", "rec-1")
    assert backend.kinds() == ["started", "started", "stopped"]
