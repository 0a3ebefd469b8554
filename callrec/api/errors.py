"""API errors: one type, mapped once to `{error, message, details?}` (the Meet spec's error body)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from callrec.api.zod_messages import meet_field, meet_message
from callrec.domain.errors import ServiceUnavailable
from callrec.recordings import errors as service


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or {}
        self.status = status
        self.error = error
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        if self.code is not None:
            body["code"] = self.code
        return body


def unauthorized() -> ApiError:
    """No credential: the answer names the headers that carry one."""
    message = (
        "Unauthorized: send `X-API-KEY: <api key>`, `Authorization: Bearer <user token>` "
        "or `X-Room-Member-Token: <member token>`"
    )
    return ApiError(401, "Authentication Error", message, headers={"WWW-Authenticate": 'Bearer realm="callrec"'})


def invalid_api_key() -> ApiError:
    return ApiError(401, "Authentication Error", "Invalid API key: X-API-KEY does not match the configured key")


def malformed_body(message: str = "Malformed body") -> ApiError:
    return ApiError(400, "Bad Request", message)


def room_not_found(room_id: str) -> ApiError:
    return from_service(service.RoomNotFound(room_id))


def recording_not_found(recording_id: str) -> ApiError:
    return from_service(service.RecordingNotFound(recording_id))


# The Meet-style answer to each of the recordings service's refusals: (status, error).
SERVICE_ERRORS: dict[type[Exception], tuple[int, str]] = {
    service.RoomNotFound: (404, "Room Error"),
    service.RecordingNotFound: (404, "Recording Error"),
    service.RecordingDisabled: (403, "Recording Error"),
    service.NoParticipants: (409, "Recording Error"),
    service.ConsentMissing: (409, "Recording Error"),
    service.RoomAlreadyRecording: (409, "Recording Error"),
    service.RecordingNotActive: (409, "Recording Error"),
    service.RecordingInProgress: (409, "Recording Error"),
    service.NotExpectingFile: (409, "Recording Error"),
    service.OfferClosed: (409, "Recording Error"),
    service.ShareFailed: (503, "Recording Error"),
    service.StartFailed: (503, "Recording Error"),
}
UNAVAILABLE_MESSAGES: dict[type[Exception], str] = {
    service.StoreUnavailable: "The object store is not available; try again shortly",
}


def from_service(exc: service.RecordingError | ServiceUnavailable) -> ApiError:
    """The Meet-style error body of a service error."""
    if isinstance(exc, ServiceUnavailable):
        message = UNAVAILABLE_MESSAGES.get(type(exc), "The workflow service is not available; try again shortly")
        if isinstance(exc, service.WorkerUnavailable):  # names the recording and what became of the request
            message = str(exc)
        headers = {"Retry-After": str(exc.retry_after_s)}
        if isinstance(exc, service.NoRecorderCapacity):
            return ApiError(503, "Recording Error", str(exc), headers=headers, code=exc.code)
        return ApiError(503, "Service Unavailable", message, headers=headers)
    if isinstance(exc, service.EncodingNotSupported):  # a validation answer, naming the field
        return ApiError(422, "Unprocessable Entity", "Invalid request", [{"field": exc.field, "message": str(exc)}])
    status, error = SERVICE_ERRORS.get(type(exc), (409, "Recording Error"))
    return ApiError(status, error, str(exc))


def recording_not_complete(recording_id: str, status: str) -> ApiError:
    return ApiError(409, "Recording Error", f"Recording '{recording_id}' is not complete (status: {status})")


def range_not_satisfiable(recording_id: str, size: int) -> ApiError:
    return ApiError(
        416,
        "Recording Error",
        f"Recording '{recording_id}' range not satisfiable. File size: {size}",
        headers={"Content-Range": f"bytes */{size}"},
    )


def invalid_parameter(field: str, message: str) -> ApiError:
    return ApiError(422, "Unprocessable Entity", "Invalid request", [{"field": field, "message": message}])


def validation_failed(exc: ValidationError) -> ApiError:
    """Meet's 422: each detail worded as Meet (zod) words it (`callrec.api.zod_messages`)."""
    details = [{"field": meet_field(err) or "body", "message": meet_message(err)} for err in exc.errors()]
    return ApiError(422, "Unprocessable Entity", "Invalid request", details)
