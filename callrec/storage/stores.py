"""Chooses the object store from settings: S3/MinIO when an endpoint is set, else a local directory."""

from __future__ import annotations

from callrec.domain.settings import Settings
from callrec.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore


async def make_store(settings: Settings) -> ObjectStore:
    if not settings.s3_endpoint:
        return LocalObjectStore(settings.objects_dir)
    if not (settings.s3_access_key and settings.s3_secret_key):
        raise SystemExit("CALLREC_S3_ENDPOINT is set: CALLREC_S3_ACCESS_KEY and CALLREC_S3_SECRET_KEY are required")
    store = S3ObjectStore(
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key,
        settings.s3_bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
    await store.ensure_bucket()
    return store
