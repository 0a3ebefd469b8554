"""What the media and preview endpoints answer about caching: `Cache-Control`, their validators (`ETag`,
`Last-Modified`), conditional requests (`callrec.api.conditional`) and `HEAD` (the GET answer's headers, no body).

`Cache-Control: private`: a recording is the caller's, never for a shared cache. No `Vary` on the credential
headers: every caller allowed to see a file gets the same bytes, and a private cache is one caller's already."""

from __future__ import annotations

import time

from quart import Response, request

from callrec.api import errors
from callrec.api.conditional import Decision, Validators, evaluate
from callrec.api.operations import Answer, error, header, header_doc

MAX_AGE_S = 3600
CACHE_CONTROL = f"private, max-age={MAX_AGE_S}"
NO_BODY: tuple[bytes, ...] = ()  # a body Quart does not measure: the `Content-Length` set is the GET answer's


def precondition(current: Validators) -> Decision:
    """The request's preconditions on the file (after its access check): 412 raised when one fails."""
    decision = evaluate(request.method, request.headers, current, time.time())
    if decision.status == 412:
        raise errors.ApiError(412, "Precondition Failed", "If-Match or If-Unmodified-Since does not hold for the file")
    return decision


def not_modified(current: Validators) -> Response:
    """304: the validators and caching rules, no content (nor a `Content-Length` of it)."""
    return Response(NO_BODY, status=304, headers={"Cache-Control": CACHE_CONTROL, **current.headers()})


def head() -> bool:
    """A HEAD: answer the GET's status and headers without reading the store (a stat at most)."""
    return request.method == "HEAD"


VALIDATOR_HEADERS = {
    "ETag": header_doc(
        "The file's validator: strong, from the recording's sha256; weak (`W/`) for a recording stored without one.",
        required=False,
    ),
    "Last-Modified": header_doc("When the file was stored (HTTP-date).", required=False),
}
CONDITIONAL_ANSWERS = {
    304: Answer(
        "Not modified: `If-None-Match` matches the `ETag` (or, without it, `If-Modified-Since` is not before "
        "`Last-Modified`); no content",
        headers={"Cache-Control": header_doc("Caching rules.")} | VALIDATOR_HEADERS,
    ),
    412: error("`If-Match` does not match the strong `ETag`, or the file was stored after `If-Unmodified-Since`"),
}
_TEXT = {"type": "string"}
CONDITIONAL_PARAMETERS = (
    header("If-None-Match", _TEXT, "`*` or entity-tags: 304 when one matches the `ETag` (weak comparison)."),
    header("If-Modified-Since", _TEXT, "An HTTP-date; without `If-None-Match`, 304 unless stored after it."),
    header("If-Range", _TEXT, "The strong `ETag` or the exact `Last-Modified`: the `Range` counts only if it holds."),
    header("If-Match", _TEXT, "`*` or entity-tags: 412 unless one matches the strong `ETag`."),
    header("If-Unmodified-Since", _TEXT, "An HTTP-date; without `If-Match`, 412 if stored after it."),
)
