"""Object storage for recordings: a local directory (`local`) or an S3/MinIO bucket (`s3`).

`base` holds what every store shares: the `ObjectStore` interface, its semantics and its errors.
"""

from callrec.storage.objects.base import ObjectInfo, ObjectNotFound, ObjectStore, ObjectStoreError, PutResult
from callrec.storage.objects.local import LocalObjectStore
from callrec.storage.objects.s3 import S3ObjectStore

__all__ = [
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "PutResult",
    "S3ObjectStore",
]
