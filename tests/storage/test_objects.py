"""ObjectStore contract tests, run against a local directory and S3 (moto over real HTTP)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import boto3
import pytest

from callrec.storage.objects import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    S3ObjectStore,
)
from callrec.storage.objects.local import read_cached
from tests.conftest import free_port

MiB = 1 << 20
ACCESS_KEY = "test-access"
SECRET_KEY = "test-secret"  # noqa: S105 - moto accepts anything


# ------------------------------------------------------------------ fixtures


S3Factory = Callable[..., S3ObjectStore]


@pytest.fixture
def s3_factory(s3_endpoint: str) -> S3Factory:
    """Build an S3ObjectStore on a fresh bucket name (created by ensure_bucket)."""

    def make(**kwargs: Any) -> S3ObjectStore:
        bucket = kwargs.pop("bucket", f"test-{uuid4().hex[:16]}")
        return S3ObjectStore(s3_endpoint, ACCESS_KEY, SECRET_KEY, bucket, **kwargs)

    return make


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    s3: S3ObjectStore = request.getfixturevalue("s3_factory")()
    await s3.ensure_bucket()
    return s3


# ------------------------------------------------------------------- helpers


def _payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


async def _chunks(data: bytes, sizes: tuple[int, ...] = (1, 7, 65_536, 1_000_003, 3, 333_333)) -> AsyncIterator[bytes]:
    """Yield ``data`` in uneven chunks, giving the loop a turn in between."""
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos : pos + n]
        pos += n
        i += 1
        await asyncio.sleep(0)


async def _failing_chunks(data: bytes, fail_after: int) -> AsyncIterator[bytes]:
    sent = 0
    async for chunk in _chunks(data):
        if sent >= fail_after:
            raise RuntimeError("client went away")
        yield chunk
        sent += len(chunk)


async def _read_all(store: ObjectStore, key: str, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, **kwargs)])


def _files_under(root: Path) -> list[str]:
    return sorted(str(Path(d, f).relative_to(root)) for d, _, files in os.walk(root) for f in files)


async def _put(store: ObjectStore, key: str, data: bytes) -> None:
    await store.put_stream(key, _chunks(data))


# --------------------------------------------------------------------- tests


async def test_put_stream_round_trip_and_ranges(store: ObjectStore) -> None:
    data = _payload(3 * MiB + 17)
    key = f"staging/rec-1/{uuid4()}.mp4"

    result = await store.put_stream(key, _chunks(data))

    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (await store.stat(key)).size == len(data)
    assert (await store.stat(key)).key == key
    assert await _read_all(store, key) == data

    n = len(data)
    ranges: list[tuple[int, int | None]] = [
        (0, 1),  # first byte
        (n - 1, 1),  # last byte
        (n - 1, None),
        (1234, 777_777),  # middle
        (n - 4096, 4096),  # exactly to the end
        (n - 4096, None),
        (n - 10, 1000),  # past the end: clipped
        (0, n),
    ]
    for offset, length in ranges:
        expected = data[offset:] if length is None else data[offset : offset + length]
        assert await _read_all(store, key, offset=offset, length=length) == expected, (offset, length)

    # Nothing to read at/after the end, or for an empty range.
    assert await _read_all(store, key, offset=n) == b""
    assert await _read_all(store, key, offset=n + 10, length=5) == b""
    assert await _read_all(store, key, offset=5, length=0) == b""


async def test_read_respects_chunk_size(store: ObjectStore) -> None:
    data = _payload(200_000, seed=2)
    await _put(store, "recordings/room/a.mp4", data)

    chunks = [c async for c in store.read("recordings/room/a.mp4", offset=10, length=150_000, chunk_size=4096)]

    assert all(0 < len(c) <= 4096 for c in chunks)
    assert b"".join(chunks) == data[10:150_010]


async def test_empty_object(store: ObjectStore) -> None:
    result = await store.put_stream("staging/r/empty.mp4", _chunks(b""))

    assert result.size == 0
    assert result.sha256 == hashlib.sha256(b"").hexdigest()
    assert (await store.stat("staging/r/empty.mp4")).size == 0
    assert await _read_all(store, "staging/r/empty.mp4") == b""
    assert await _read_all(store, "staging/r/empty.mp4", offset=0, length=10) == b""


async def test_overwrite_replaces_content(store: ObjectStore) -> None:
    await _put(store, "staging/r/x.mp4", b"old content that is longer")
    await _put(store, "staging/r/x.mp4", b"new")

    assert await _read_all(store, "staging/r/x.mp4") == b"new"


async def test_failing_source_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    key = "staging/rec-2/upload.mp4"

    with pytest.raises(RuntimeError, match="client went away"):
        await store.put_stream(key, _failing_chunks(_payload(3 * MiB), fail_after=2 * MiB))

    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    assert await store.list_keys("") == []
    if isinstance(store, LocalObjectStore):
        assert _files_under(store.root) == []  # no stray temp files


async def test_cancelled_put_leaves_nothing(store: ObjectStore) -> None:
    key = "staging/rec-3/upload.mp4"
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield _payload(MiB)
        started.set()
        await asyncio.Event().wait()  # the client stops sending
        yield b"never"

    task = asyncio.create_task(store.put_stream(key, stalled()))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    if isinstance(store, LocalObjectStore):
        assert _files_under(store.root) == []


async def test_put_file_and_download(store: ObjectStore, tmp_path: Path) -> None:
    data = _payload(2 * MiB + 5, seed=3)
    src = tmp_path / "in.mp4"
    src.write_bytes(data)

    result = await store.put_file("recordings/room-1/rec-1.mp4", src)
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()

    dst = tmp_path / "out" / "nested" / "copy.mp4"
    await store.download("recordings/room-1/rec-1.mp4", dst)
    assert dst.read_bytes() == data
    assert sorted(p.name for p in dst.parent.iterdir()) == ["copy.mp4"]  # no temp left behind


async def test_download_missing_leaves_no_file(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await store.download("recordings/nope.mp4", tmp_path / "dl" / "x.mp4")
    assert list((tmp_path / "dl").iterdir()) == []


async def test_move(store: ObjectStore) -> None:
    data = _payload(MiB + 1, seed=4)
    src, dst = "staging/rec-4/part.mp4", "recordings/room-9/rec-4.mp4"
    await _put(store, src, data)

    await store.move(src, dst)

    assert await _read_all(store, dst) == data
    with pytest.raises(ObjectNotFound):
        await store.stat(src)

    # A retried move (src gone, dst present) is fine and changes nothing.
    await store.move(src, dst)
    assert await _read_all(store, dst) == data

    with pytest.raises(ObjectNotFound):
        await store.move("staging/missing/a.mp4", "recordings/missing/a.mp4")


async def test_missing_keys(store: ObjectStore) -> None:
    await store.delete("staging/none/nothing.mp4")  # no error

    with pytest.raises(ObjectNotFound):
        await store.stat("staging/none/nothing.mp4")
    with pytest.raises(ObjectNotFound):
        await _read_all(store, "staging/none/nothing.mp4")
    with pytest.raises(ObjectNotFound):
        await _read_all(store, "staging/none/nothing.mp4", offset=10, length=0)


async def test_delete(store: ObjectStore) -> None:
    await _put(store, "staging/rec-5/a.mp4", b"abc")
    await _put(store, "staging/rec-5/b.mp4", b"def")

    await store.delete("staging/rec-5/a.mp4")

    assert await store.list_keys("staging/") == ["staging/rec-5/b.mp4"]
    with pytest.raises(ObjectNotFound):
        await store.stat("staging/rec-5/a.mp4")


async def test_list_keys(store: ObjectStore) -> None:
    keys = [
        "recordings/room-1/rec-1.mp4",
        "staging/rec-1/b.mp4",
        "staging/rec-1/a.mp4",
        "staging/rec-10/c.mp4",
        "staging/rec-2/d.mp4",
    ]
    for i, key in enumerate(keys):
        await _put(store, key, bytes([i]) * 10)

    assert await store.list_keys("") == sorted(keys)
    assert await store.list_keys("staging/") == sorted(k for k in keys if k.startswith("staging/"))
    assert await store.list_keys("staging/rec-1/") == ["staging/rec-1/a.mp4", "staging/rec-1/b.mp4"]
    assert await store.list_keys("staging/rec-1") == [  # plain string prefix
        "staging/rec-1/a.mp4",
        "staging/rec-1/b.mp4",
        "staging/rec-10/c.mp4",
    ]
    assert await store.list_keys("staging/rec-1/a") == ["staging/rec-1/a.mp4"]
    assert await store.list_keys("nothing/") == []
    assert await store.list_keys("recordings/room-1/rec-1.mp4/") == []


async def test_concurrent_round_trips(store: ObjectStore) -> None:
    payloads = {f"staging/rec-c/{i}.mp4": _payload(300_000 + i, seed=i) for i in range(12)}

    await asyncio.gather(*(_put(store, k, v) for k, v in payloads.items()))
    results = await asyncio.gather(*(_read_all(store, k) for k in payloads))

    assert results == list(payloads.values())


async def test_many_concurrent_put_files_do_not_deadlock(store: ObjectStore, tmp_path: Path) -> None:
    # More uploads than the default executor has threads: an upload must not
    # hold a default-executor thread while waiting for its file to be read.
    n = min(32, (os.cpu_count() or 1) + 4) + 4
    files = []
    for i in range(n):
        path = tmp_path / f"in-{i}.mp4"
        path.write_bytes(_payload(2 * MiB, seed=100 + i))
        files.append(path)

    results = await asyncio.wait_for(
        asyncio.gather(*(store.put_file(f"staging/rec-d/{i}.mp4", p) for i, p in enumerate(files))),
        timeout=60,
    )

    assert [r.size for r in results] == [2 * MiB] * n
    assert len(await store.list_keys("staging/rec-d/")) == n


async def test_abandoned_reads_do_not_exhaust_the_store(store: ObjectStore) -> None:
    data = _payload(3 * MiB, seed=5)
    await _put(store, "recordings/r/big.mp4", data)

    for _ in range(40):  # more than the S3 connection pool size
        reader = store.read("recordings/r/big.mp4", chunk_size=64 * 1024)
        assert len(await anext(reader)) == 64 * 1024
        await reader.aclose()  # type: ignore[attr-defined]

    assert await _read_all(store, "recordings/r/big.mp4") == data


async def test_blocking_reader_gives_the_object_and_releases_it(store: ObjectStore) -> None:
    data = _payload(3 * MiB + 5, seed=6)
    await _put(store, "recordings/r/whole.mp4", data)
    await _put(store, "recordings/r/empty.mp4", b"")

    def read(key: str, chunk_size: int = MiB) -> list[bytes]:
        return list(store.read_blocking(key, chunk_size))

    chunks = await asyncio.to_thread(read, "recordings/r/whole.mp4", 100_000)
    assert all(0 < len(c) <= 100_000 for c in chunks)
    assert b"".join(chunks) == data
    assert await asyncio.to_thread(read, "recordings/r/empty.mp4") == []
    with pytest.raises(ObjectNotFound):
        await asyncio.to_thread(read, "recordings/r/missing.mp4")

    def abandon() -> None:
        for _ in range(40):  # more than the S3 connection pool size
            reader = store.read_blocking("recordings/r/whole.mp4", 64 * 1024)
            assert len(next(reader)) == 64 * 1024
            reader.close()  # type: ignore[attr-defined]

    await asyncio.to_thread(abandon)
    assert await _read_all(store, "recordings/r/whole.mp4") == data


async def test_check_ok(store: ObjectStore) -> None:
    await store.check()


@pytest.mark.parametrize(
    "key",
    ["../x", "/abs", "a/../../b", "", "a\\b", "a//b", "a/./b", "a/", "staging/.callrec-tmp-x"],
)
async def test_rejects_bad_keys(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="key"):
        await store.put_stream(key, _chunks(b"data"))
    with pytest.raises(ValueError, match="key"):
        await store.stat(key)
    with pytest.raises(ValueError, match="key"):
        await _read_all(store, key)
    with pytest.raises(ValueError, match="key"):
        await store.delete(key)
    with pytest.raises(ValueError, match="key"):
        await store.move(key, "staging/ok.mp4")
    if isinstance(store, LocalObjectStore):
        assert not (tmp_path / "x").exists()
        assert not (tmp_path / "b").exists()


async def test_list_keys_rejects_escaping_prefix(store: ObjectStore) -> None:
    with pytest.raises(ValueError, match="prefix"):
        await store.list_keys("../")
    with pytest.raises(ValueError, match="prefix"):
        await store.list_keys("/etc/")


# ---------------------------------------------------------------- S3 specific


async def test_s3_multipart_round_trip(s3_factory: S3Factory) -> None:
    store = s3_factory(part_size=5 * MiB)
    await store.ensure_bucket()
    data = _payload(2 * 5 * MiB + 123_457, seed=6)  # three parts

    result = await store.put_stream("recordings/room/long.mp4", _chunks(data))

    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert (await store.stat("recordings/room/long.mp4")).size == len(data)
    assert await _read_all(store, "recordings/room/long.mp4") == data
    # Ranges crossing part boundaries.
    assert (
        await _read_all(store, "recordings/room/long.mp4", offset=5 * MiB - 3, length=5 * MiB + 6)
        == (data[5 * MiB - 3 : 10 * MiB + 3])
    )


def _open_multipart_uploads(s3_endpoint: str, bucket: str) -> list[dict[str, Any]]:
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{s3_endpoint}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    uploads: list[dict[str, Any]] = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return uploads


async def test_s3_failing_multipart_upload_is_aborted(s3_factory: S3Factory, s3_endpoint: str) -> None:
    store = s3_factory(part_size=5 * MiB)
    await store.ensure_bucket()
    key = "staging/rec-6/upload.mp4"

    with pytest.raises(RuntimeError, match="client went away"):
        await store.put_stream(key, _failing_chunks(_payload(14 * MiB), fail_after=12 * MiB))

    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    assert _open_multipart_uploads(s3_endpoint, store.bucket) == []


async def test_s3_cancelled_multipart_upload_is_aborted(s3_factory: S3Factory, s3_endpoint: str) -> None:
    store = s3_factory(part_size=5 * MiB)
    await store.ensure_bucket()
    key = "staging/rec-7/upload.mp4"
    sent = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        async for chunk in _chunks(_payload(11 * MiB)):
            yield chunk
        sent.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(store.put_stream(key, stalled()))
    await asyncio.wait_for(sent.wait(), 30)
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    with pytest.raises(ObjectNotFound):
        await store.stat(key)
    assert _open_multipart_uploads(s3_endpoint, store.bucket) == []


async def test_s3_move_of_large_object_uses_multipart_copy(s3_factory: S3Factory) -> None:
    # max_copy_size lowered so the compose_object (UploadPartCopy) path used for
    # objects over 5 GiB is exercised with a small object.
    store = s3_factory(max_copy_size=MiB)
    await store.ensure_bucket()
    data = _payload(6 * MiB + 11, seed=7)
    await _put(store, "staging/rec-8/a.mp4", data)

    await store.move("staging/rec-8/a.mp4", "recordings/room/rec-8.mp4")

    assert await _read_all(store, "recordings/room/rec-8.mp4") == data
    assert await store.list_keys("") == ["recordings/room/rec-8.mp4"]


async def test_s3_endpoint_as_url(s3_endpoint: str) -> None:
    store = S3ObjectStore(f"http://{s3_endpoint}", ACCESS_KEY, SECRET_KEY, f"test-{uuid4().hex[:16]}", secure=True)
    await store.ensure_bucket()  # would fail if "secure=True" won over the http:// scheme
    await store.check()


async def test_s3_check_missing_bucket(s3_factory: S3Factory) -> None:
    with pytest.raises(ObjectStoreError, match="does not exist"):
        await s3_factory().check()


async def test_s3_unreachable_fails_fast() -> None:
    store = S3ObjectStore(
        f"127.0.0.1:{free_port()}",  # nothing listens there
        ACCESS_KEY,
        SECRET_KEY,
        "bucket",
        connect_timeout=1,
        read_timeout=2,
        max_retries=1,
    )
    started = time.monotonic()
    with pytest.raises(ObjectStoreError):
        await store.check()
    with pytest.raises(ObjectStoreError):
        await store.stat("staging/x.mp4")
    with pytest.raises(ObjectStoreError):
        await store.put_stream("staging/x.mp4", _chunks(b"abc"))
    assert time.monotonic() - started < 5


async def test_s3_unreachable_with_default_settings_fails_fast() -> None:
    store = S3ObjectStore(f"127.0.0.1:{free_port()}", ACCESS_KEY, SECRET_KEY, "bucket")
    started = time.monotonic()
    with pytest.raises(ObjectStoreError):
        await store.check()
    assert time.monotonic() - started < 5


# ------------------------------------------------------------- local specific


async def test_local_delete_and_move_prune_empty_directories(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await _put(store, "staging/rec-1/a.mp4", b"a")
    await _put(store, "staging/rec-2/b.mp4", b"b")

    await store.move("staging/rec-1/a.mp4", "recordings/room/rec-1.mp4")
    await store.delete("staging/rec-2/b.mp4")

    assert not (store.root / "staging").exists()
    assert _files_under(store.root) == [os.path.join("recordings", "room", "rec-1.mp4")]
    await store.check()


async def test_sweep_removes_only_stale_leftovers_of_killed_writes(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    await _put(store, "staging/rec-1/upload.mp4", b"whole")
    # What a process killed mid-write leaves: a temporary file in the destination directory.
    stale = tmp_path / "objects" / "staging" / "rec-2" / ".callrec-tmp-dead"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 600, time.time() - 600))
    fresh = tmp_path / "objects" / "staging" / "rec-3" / ".callrec-tmp-writing"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"still coming")

    assert await store.sweep_unfinished(older_than_s=120) == ["staging/rec-2/.callrec-tmp-dead"]
    assert not stale.parent.exists()  # its directory went with it
    assert fresh.exists()
    assert await store.list_keys("staging/") == ["staging/rec-1/upload.mp4"]
    assert await store.sweep_unfinished(older_than_s=120) == []


async def test_presigned_url_reads_the_object_with_a_plain_http_client(s3_factory: S3Factory) -> None:
    import httpx

    store = s3_factory()
    await store.ensure_bucket()
    data = _payload(300_000)
    await _put(store, "recordings/r/a.mp4", data)
    async with httpx.AsyncClient() as http:
        whole = await http.get(store.presigned_url("recordings/r/a.mp4"))
        part = await http.get(store.presigned_url("recordings/r/a.mp4"), headers={"Range": "bytes=10-19"})
    assert (whole.status_code, whole.content) == (200, data)
    assert (part.status_code, part.content) == (206, data[10:20])


async def test_a_small_range_is_the_same_read_from_the_page_cache_or_from_the_disk(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    data = _payload(2 * MiB, seed=5)
    key = "recordings/room/seek.mp4"
    await _put(store, key, data)
    path = await store.file_path(key)
    assert path is not None
    fd = os.open(path, os.O_RDONLY)
    try:  # out of the page cache: a read in the event loop's thread would wait for the disk
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    seek = data[MiB : MiB + 64 * 1024]

    assert read_cached(path, MiB, len(seek)) is None  # so it is read in a thread
    assert await _read_all(store, key, offset=MiB, length=len(seek)) == seek
    assert read_cached(path, MiB, len(seek)) == seek  # now in memory: read at once, in the loop's thread
    assert await _read_all(store, key, offset=MiB, length=len(seek)) == seek
    assert await _read_all(store, key, offset=2 * MiB - 10, length=1000) == data[-10:]  # short at the end: a thread
