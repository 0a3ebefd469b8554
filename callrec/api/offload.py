"""Letting a proxy send a recording's bytes once callrec has authorized the request (`CALLREC_MEDIA_OFFLOAD`).

`x-accel`: callrec answers with an empty body and `X-Accel-Redirect: <prefix><key>`; the nginx in front serves
that `internal` location itself (the objects directory of a local store, or the S3 endpoint for a presigned path
and query callrec passes along), answering the client's `Range` and setting `Content-Length`. nginx keeps
Content-Type, Cache-Control and Content-Disposition of callrec's answer.

`presigned` (S3 only): callrec answers 302 to a presigned GET URL of the object, valid `media_offload_expiry_s`;
the client's `Range` then goes to S3.

Authorization, the Range checks (416, 422) and the request's counting stay callrec's: they ran before this.
"""

from __future__ import annotations

import asyncio
from urllib.parse import quote, urlsplit

from quart import Response

from callrec.api.operations import Answer, header_doc
from callrec.api.services import services
from callrec.storage.objects import S3ObjectStore

# The answer of `presigned`, for the media and download operations' documentation.
PRESIGNED_REDIRECT = Answer(
    "`CALLREC_MEDIA_OFFLOAD=presigned`: the file is at a presigned S3 URL, valid `CALLREC_MEDIA_OFFLOAD_EXPIRY_S`; "
    "the client's `Range` goes there",
    headers={"Location": header_doc("The presigned URL.")},
)

# Headers of callrec's answer that nginx keeps when it follows X-Accel-Redirect (the rest it sets itself).
KEPT_HEADERS = ("Content-Type", "Cache-Control", "Content-Disposition")


def header_safe(value: str) -> str:
    """`value` if it is a visible-ASCII header value, else ValueError: nothing from a key reaches a header raw."""
    if not value or any(not ("\x21" <= c <= "\x7e") for c in value):
        raise ValueError(f"not a safe header value: {value!r}")
    return value


def accel_target(prefix: str, key: str) -> str:
    """The X-Accel-Redirect of a local store's object: the internal prefix and the key, percent-encoded."""
    return header_safe(prefix.rstrip("/") + "/" + quote(key, safe="/"))


def accel_presigned_target(prefix: str, url: str) -> str:
    """The X-Accel-Redirect of an S3 object: the internal prefix, then the presigned URL's path and query, which
    nginx's internal location proxies to the S3 endpoint as they are (the signature covers them)."""
    parts = urlsplit(url)
    return header_safe(prefix.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else ""))


async def presigned(key: str, headers: dict[str, str]) -> str:
    """A presigned GET URL of `key` whose answer carries callrec's `headers` (S3's response-* overrides)."""
    store, settings = services().store, services().settings
    if not isinstance(store, S3ObjectStore):  # refused at start-up (Settings.require_media_offload)
        raise RuntimeError("presigned media URLs need an S3 store")
    return await asyncio.to_thread(store.presigned_url, key, settings.media_offload_expiry_s, headers)


async def offloaded(key: str, headers: dict[str, str]) -> Response | None:
    """The answer that hands the object `key` to the proxy or to S3, or None when callrec streams it itself.
    `headers`: those callrec would answer with the bytes (the kept ones go along)."""
    settings = services().settings
    if settings.media_offload == "none":
        return None
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    if settings.media_offload == "presigned":
        response = Response("", status=302, headers={"Location": header_safe(await presigned(key, kept))})
        response.headers["Cache-Control"] = "no-store"  # the URL expires; a cached redirect would outlive it
        return response
    if isinstance(services().store, S3ObjectStore):
        # nginx keeps callrec's Cache-Control and Content-Disposition but takes S3's Content-Type: sign callrec's in
        url = await presigned(key, {"Content-Type": kept["Content-Type"]} if "Content-Type" in kept else {})
        target = accel_presigned_target(settings.media_offload_prefix, url)
    else:
        target = accel_target(settings.media_offload_prefix, key)
    return Response("", status=200, headers=kept | {"X-Accel-Redirect": target})
