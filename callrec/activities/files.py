"""Validates an uploaded recording and moves it to its final key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.domain.recording import EXTENSIONS, FinalizeInput, FinalizeResult
from callrec.media.previews import SUFFIXES, make_previews, preview_key
from callrec.media.probe import InvalidMedia, probe_recording
from callrec.metrics import FINALIZE_SECONDS
from callrec.storage.objects import ObjectNotFound, ObjectStore, ObjectStoreError

log = logging.getLogger(__name__)


def final_key(request: FinalizeInput) -> str:
    extension = request.extension or EXTENSIONS[request.kind]
    return f"recordings/{request.room_id}/{request.recording_id}.{extension}"


@asynccontextmanager
async def heartbeating(every_s: float = 5.0) -> AsyncIterator[None]:
    """Heartbeats while the body (storing a recording) runs, so a dead worker is noticed within the heartbeat timeout.
    The object store failing is an expected, retryable failure: an `ObjectStoreUnavailable` ApplicationError (one log
    line and a typed failure in the Temporal UI, not a stack)."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    except ObjectStoreError as exc:
        if isinstance(exc, ObjectNotFound):
            raise
        raise ApplicationError(f"The object store failed: {exc}", type="ObjectStoreUnavailable") from exc
    finally:
        task.cancel()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class FileActivities:
    def __init__(self, store: ObjectStore, workdir: Path | None = None) -> None:
        self.store = store
        self.workdir = workdir

    @activity.defn
    async def finalize(self, request: FinalizeInput) -> FinalizeResult:
        key = final_key(request)
        async with heartbeating():
            # A retry after the move finds the file at its final key only.
            source = request.staging_key
            try:
                await self.store.stat(source)
            except ObjectNotFound:
                source = key
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                local = Path(tmp) / f"recording.{key.rsplit('.', 1)[1]}"
                with FINALIZE_SECONDS.labels("validate").time():
                    try:
                        await self.store.download(source, local)
                    except ObjectNotFound as exc:
                        raise ApplicationError(
                            "The uploaded file is gone from the object store.",
                            type="InvalidRecordingFile",
                            non_retryable=True,
                        ) from exc
                    try:
                        info = await asyncio.to_thread(probe_recording, local, request.kind.value)
                    except InvalidMedia as exc:
                        await self.store.delete(source)
                        raise ApplicationError(
                            exc.reason, exc.code, type="InvalidRecordingFile", non_retryable=True
                        ) from exc
                    size = local.stat().st_size
                    sha256 = await asyncio.to_thread(_sha256, local)
                with FINALIZE_SECONDS.labels("previews").time():
                    await self._store_previews(local, key, info.duration_s)
            if source != key:
                with FINALIZE_SECONDS.labels("store").time():
                    await self.store.move(source, key)
        return FinalizeResult(
            object_key=key,
            filename=key.rsplit("/", 1)[1],
            size=size,
            sha256=sha256,
            duration=round(info.duration_s, 3),
            width=info.width,
            height=info.height,
            video_codec=info.video_codec,
            audio_codec=info.audio_codec,
            framerate=info.framerate,
            video_profile=info.video_profile,
        )

    async def _store_previews(self, local: Path, key: str, duration_s: float) -> None:
        """The recording's poster and seek thumbnails (or waveform), next to its final key. Optional: when they
        cannot be made or stored, one warning line, and none of them is left (the endpoints answer 404)."""
        try:
            made = await asyncio.to_thread(make_previews, local, duration_s)
            for suffix, content in made.items():
                await self.store.put_stream(preview_key(key, suffix), _one_chunk(content))
        except Exception as exc:  # noqa: BLE001 - previews are optional: the recording is stored without them
            log.warning("no poster or thumbnails for %s: %s: %s", key, type(exc).__name__, exc)
            for suffix in SUFFIXES:
                with contextlib.suppress(ObjectStoreError):
                    await self.store.delete(preview_key(key, suffix))


async def _one_chunk(content: bytes) -> AsyncIterator[bytes]:
    yield content
