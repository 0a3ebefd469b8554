"""`S3ObjectStore`: objects in an S3-compatible bucket (AWS S3, MinIO) through the synchronous minio client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import mimetypes
import os
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import BinaryIO, cast
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource, CopySource
from minio.error import MinioException, S3Error
from minio.helpers import MAX_PART_SIZE, MIN_PART_SIZE, DictType
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from callrec.storage.objects.base import (
    DEFAULT_CHUNK_SIZE,
    MiB,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PutResult,
)
from callrec.storage.objects.keys import validate_key, validate_range
from callrec.storage.objects.threads import in_thread, open_in_thread, wait_quietly
from callrec.storage.objects.upload_queue import UPLOAD_BLOCK, QueueItem, QueueReader, abort_queue, feed_queue

# An upload of unknown length holds about four copies of a part at once (the reader's join, and minio's
# look-ahead byte: `one_byte + data`, then `[:-1]`), so the API's memory per upload is about 4 x this.
# 8 MiB keeps it under 64 MB; 10,000 parts of 8 MiB still allow objects of 78 GiB.
DEFAULT_PART_SIZE = 8 * MiB


@contextlib.contextmanager
def _s3_errors(action: str, key: str) -> Iterator[None]:
    """Translate minio/urllib3 failures into this module's exceptions."""
    try:
        yield
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise ObjectNotFound(key) from exc
        raise ObjectStoreError(f"{action} {key!r}: {exc.code}: {exc.message}") from exc
    except (MinioException, Urllib3HTTPError, OSError) as exc:
        raise ObjectStoreError(f"{action} {key!r}: {type(exc).__name__}: {exc}") from exc


def _release(response: BaseHTTPResponse | None) -> None:
    if response is not None:
        response.close()
        response.release_conn()


def _parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"invalid S3 endpoint {endpoint!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"S3 endpoint must not have a path: {endpoint!r}")
    return parts.netloc, parts.scheme == "https"


class S3ObjectStore(ObjectStore):
    """Objects in an S3-compatible bucket via the (thread-safe, synchronous) minio client.

    Keyword tuning: ``part_size`` of multipart uploads (5 MiB..5 GiB);
    ``max_copy_size``: objects above it are moved with a multipart server-side
    copy (``compose_object``) instead of ``CopyObject``, whose limit is 5 GiB;
    HTTP ``connect_timeout``/``read_timeout`` in seconds, ``max_retries`` for
    connection errors and 5xx responses, and ``max_connections`` in the pool.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_copy_size: int = MAX_PART_SIZE,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        max_retries: int = 3,
        max_connections: int = 32,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE}")
        if not 0 <= max_copy_size <= MAX_PART_SIZE:
            raise ValueError(f"max_copy_size must be between 0 and {MAX_PART_SIZE}")
        host, secure = _parse_endpoint(endpoint, secure)
        http = urllib3.PoolManager(
            maxsize=max_connections,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=max_retries,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
            ),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self._client = Minio(
            host,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        # Uploads hold a thread for their whole duration while waiting for
        # chunks; a dedicated pool keeps them from exhausting the default
        # executor that chunk sources (e.g. file reads) themselves need.
        self._upload_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_connections, thread_name_prefix="s3-upload"
        )
        self._bucket = bucket
        self._region = region
        self._part_size = part_size
        self._max_copy_size = max_copy_size

    @property
    def bucket(self) -> str:
        return self._bucket

    # -- helpers running in threads

    def _exists(self, key: str) -> bool:
        try:
            self._client.stat_object(self._bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return False
            raise
        return True

    def _ensure_bucket_blocking(self) -> None:
        with _s3_errors("create bucket", self._bucket):
            if self._client.bucket_exists(self._bucket):
                return
            try:
                self._client.make_bucket(self._bucket, location=self._region)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
                if not self._client.bucket_exists(self._bucket):
                    raise

    def _check_blocking(self) -> None:
        with _s3_errors("check bucket", self._bucket):
            exists = self._client.bucket_exists(self._bucket)
        if not exists:
            raise ObjectStoreError(f"bucket {self._bucket!r} does not exist")

    def _put_blocking(self, key: str, reader: QueueReader) -> None:
        with _s3_errors("put", key):
            self._client.put_object(
                self._bucket,
                key,
                cast(BinaryIO, reader),
                length=-1,
                content_type=mimetypes.guess_type(key)[0] or "application/octet-stream",
                part_size=self._part_size,
                # Sequential parts: bounded memory, and a failure aborts the
                # multipart upload without leaving minio's worker threads behind.
                num_parallel_uploads=1,
            )

    def _delete_blocking(self, key: str) -> None:
        with _s3_errors("delete", key):
            self._client.remove_object(self._bucket, key)

    def _stat_blocking(self, key: str) -> ObjectInfo:
        with _s3_errors("stat", key):
            st = self._client.stat_object(self._bucket, key)
        modified = st.last_modified.timestamp() if st.last_modified is not None else None
        return ObjectInfo(key=key, size=st.size or 0, modified=modified)

    def _get_blocking(self, key: str, offset: int, length: int | None) -> BaseHTTPResponse | None:
        """Open a (ranged) GET; ``None`` if the range starts past the end."""
        with _s3_errors("read", key):
            try:
                return self._client.get_object(self._bucket, key, offset=offset, length=length or 0)
            except S3Error as exc:
                if exc.code == "InvalidRange":  # offset >= size (or an empty object)
                    return None
                raise

    @staticmethod
    def _read_chunk(response: BaseHTTPResponse, n: int, key: str) -> bytes:
        with _s3_errors("read", key):
            return response.read(n)

    def _move_blocking(self, src: str, dst: str) -> None:
        with _s3_errors("move", src):
            try:
                st = self._client.stat_object(self._bucket, src)
            except S3Error as exc:
                if exc.code != "NoSuchKey":
                    raise
                if src != dst and self._exists(dst):
                    return  # already moved
                raise ObjectNotFound(src) from exc
            if src == dst:
                return
            if (st.size or 0) > self._max_copy_size:
                # offset=0 makes minio always use UploadPartCopy (in <= 5 GiB parts).
                self._client.compose_object(self._bucket, dst, [ComposeSource(self._bucket, src, offset=0)])
            else:
                self._client.copy_object(self._bucket, dst, CopySource(self._bucket, src))
            self._client.remove_object(self._bucket, src)

    def _list_blocking(self, prefix: str) -> list[str]:
        with _s3_errors("list", prefix):
            keys = [
                obj.object_name
                for obj in self._client.list_objects(self._bucket, prefix=prefix or None, recursive=True)
                if obj.object_name and not obj.is_dir
            ]
        keys.sort()
        return keys

    # -- API

    def presigned_url(self, key: str, expires_s: int = 3600, response_headers: dict[str, str] | None = None) -> str:
        """A URL that GETs ``key`` straight from the bucket, without credentials, until it expires.
        ``response_headers``: headers S3 answers with instead of the stored ones (Content-Type, Cache-Control,
        Content-Disposition), signed into the URL."""
        validate_key(key)
        overrides: DictType = {f"response-{name.lower()}": value for name, value in (response_headers or {}).items()}
        return self._client.presigned_get_object(
            self._bucket, key, expires=timedelta(seconds=expires_s), response_headers=overrides or None
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        await asyncio.to_thread(self._ensure_bucket_blocking)

    async def check(self) -> None:
        await asyncio.to_thread(self._check_blocking)

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes]) -> PutResult:
        validate_key(key)
        queue: asyncio.Queue[QueueItem] = asyncio.Queue(maxsize=max(1, self._part_size // UPLOAD_BLOCK))
        loop = asyncio.get_running_loop()
        reader = QueueReader(loop, queue)
        pump = asyncio.create_task(feed_queue(chunks, queue))
        upload = loop.run_in_executor(self._upload_executor, self._put_blocking, key, reader)
        try:
            await asyncio.shield(upload)
        except asyncio.CancelledError:
            pump.cancel()
            abort_queue(queue, asyncio.CancelledError())
            await wait_quietly(pump)
            await wait_quietly(upload)
            if upload.done() and not upload.cancelled() and upload.exception() is None:
                # The upload completed before it saw the abort: undo it.
                with contextlib.suppress(ObjectStoreError):
                    await in_thread(self._delete_blocking, key)
            raise
        except BaseException:
            source_error = pump.exception() if pump.done() and not pump.cancelled() else None
            if source_error is None:
                pump.cancel()
                await wait_quietly(pump)
                raise
        else:
            await pump
            return PutResult(size=reader.size, sha256=reader.hexdigest())
        # The caller's iterator failed and minio aborted the upload. Re-raise the
        # original error outside the except block so its chaining is untouched.
        raise source_error

    async def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        return await asyncio.to_thread(self._stat_blocking, key)

    async def read(
        self,
        key: str,
        offset: int = 0,
        length: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        validate_range(offset, length, chunk_size)
        if length == 0:
            await self.stat(key)  # still report a missing key
            return
        response = await open_in_thread(_release, self._get_blocking, key, offset, length)
        if response is None:
            return
        try:
            while True:
                data = await in_thread(self._read_chunk, response, chunk_size, key)
                if not data:
                    return
                yield data
        finally:
            _release(response)

    def read_blocking(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        validate_key(key)
        validate_range(0, None, chunk_size)
        response = self._get_blocking(key, 0, None)
        if response is None:  # an empty object
            return
        try:
            while data := self._read_chunk(response, chunk_size, key):
                yield data
        finally:
            _release(response)
