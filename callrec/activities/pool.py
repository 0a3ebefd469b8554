"""The recorder pool's activities on the main worker: admission after a recorder is lost, release, and joining a
recording's parts into the file that is stored.

A part is what one recorder recorded: its chunks (`staging/{id}/parts/{part}/chunk-{seq}`, the bytes of its
fragmented MP4 or Ogg file in order) and a manifest (`part.json`: the wall-clock instant of its media time 0).
`assemble` concatenates each part's chunks into a local file, joins the parts by remuxing (no re-encode,
`media.segments.join_parts`), stores the result under the staging prefix (the workflow then validates and
stores it as any upload), and deletes the parts.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.activities.files import heartbeating
from callrec.domain.pool import (
    Assembled,
    AssembleInput,
    Assignment,
    AssignRequest,
    Gap,
    RecordStop,
    segments_prefix,
)
from callrec.media.segments import PartInfo, join_parts
from callrec.storage.objects import ObjectNotFound, ObjectStore
from callrec.storage.pool import RecorderPool


def _now_ms() -> int:
    return int(time.time() * 1000)


def parts_of(keys: list[str], prefix: str) -> dict[str, tuple[str | None, list[str]]]:
    """Part directory (`{number}-{run id}`) -> (manifest key, chunk keys in order), from the keys under a recording's
    parts prefix."""
    parts: dict[str, tuple[str | None, list[str]]] = {}
    for key in sorted(keys):
        directory, _, name = key.removeprefix(prefix).partition("/")
        manifest, chunks = parts.get(directory, (None, []))
        if name == "part.json":
            manifest = key
        elif name.startswith("chunk-"):
            chunks = [*chunks, key]
        else:
            continue
        parts[directory] = (manifest, chunks)
    return parts


class PoolActivities:
    def __init__(self, pool: RecorderPool, store: ObjectStore, workdir: Path | None = None) -> None:
        self.pool = pool
        self.store = store
        self.workdir = workdir

    @activity.defn
    async def assign_recorder(self, request: AssignRequest) -> Assignment | None:
        return await self.pool.assign(request, _now_ms())

    @activity.defn
    async def release_recorder(self, request: RecordStop) -> None:
        await self.pool.release(request.recording_id)

    @activity.defn
    async def assemble(self, request: AssembleInput) -> Assembled:
        prefix = segments_prefix(request.recording_id)
        extension = "ogg" if request.audio_only else "mp4"
        async with heartbeating():
            parts = parts_of(await self.store.list_keys(prefix), prefix)
            with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
                local: list[tuple[PartInfo, Path]] = []
                for index, (directory, (manifest, chunks)) in enumerate(sorted(parts.items())):
                    if not chunks:
                        continue
                    info = await self._manifest(manifest, directory)
                    path = Path(tmp) / f"part-{index}.{extension}"
                    await self._concatenate(chunks, path)
                    local.append((info, path))
                local.sort(key=lambda part: part[0].origin_ms)  # in the order they were recorded
                out = Path(tmp) / f"joined.{extension}"
                try:
                    joined = await asyncio.to_thread(join_parts, local, out, audio_only=request.audio_only)
                except ValueError as exc:
                    raise ApplicationError(
                        f"No recorder stored any usable media: {exc}", type="NothingRecorded", non_retryable=True
                    ) from exc
                key = f"staging/{request.recording_id}/{uuid.uuid4().hex}.{extension}"
                stored = await self.store.put_file(key, out)
        for manifest, chunks in parts.values():
            for part_key in [*chunks, *([manifest] if manifest else [])]:
                await self.store.delete(part_key)
        return Assembled(
            staging_key=key,
            size=stored.size,
            sha256=stored.sha256,
            extension=extension,
            duration_s=round(joined.duration_s, 3),
            gaps=[Gap(offset_s=round(g.offset_s, 3), duration_s=round(g.duration_s, 3)) for g in joined.gaps],
        )

    async def _manifest(self, key: str | None, part: str) -> PartInfo:
        """The part's manifest; without one (it could not be stored), the gap before the part is unknown: 0."""
        if key is not None:
            try:
                raw = b"".join([chunk async for chunk in self.store.read(key)])
                found = json.loads(raw[:65536])
                return PartInfo(origin_ms=int(found["origin_ms"]), recorder=str(found.get("recorder", "")))
            except (ObjectNotFound, ValueError, KeyError, TypeError):
                pass
        activity.logger.warning("part %s has no usable manifest; its gap counts as 0", part)
        return PartInfo(origin_ms=0, recorder="")

    async def _concatenate(self, chunks: list[str], path: Path) -> None:
        with path.open("wb") as out:
            for key in chunks:
                async for piece in self.store.read(key):
                    await asyncio.to_thread(out.write, piece)
