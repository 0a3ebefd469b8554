"""API errors: one type, mapped once to `{error, message, details?}` (the Meet spec's error body)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.error = error
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


def unauthorized() -> ApiError:
    return ApiError(401, "Authentication Error", "Unauthorized")


def invalid_api_key() -> ApiError:
    return ApiError(401, "Authentication Error", "Invalid API key")


def malformed_body() -> ApiError:
    return ApiError(400, "Bad Request", "Malformed body")


def room_not_found(room_id: str) -> ApiError:
    return ApiError(404, "Room Error", f"Room '{room_id}' does not exist")


def room_has_no_call(room_id: str) -> ApiError:
    return ApiError(409, "Recording Error", f"Room '{room_id}' has no participants")


def recording_disabled(room_id: str) -> ApiError:
    return ApiError(403, "Recording Error", f"Recording is disabled for room '{room_id}'")


def recording_not_found(recording_id: str) -> ApiError:
    return ApiError(404, "Recording Error", f"Recording '{recording_id}' not found")


def recording_already_started(room_id: str) -> ApiError:
    return ApiError(409, "Recording Error", f"Room '{room_id}' is already being recorded")


def recording_start_failed(room_id: str, reason: str) -> ApiError:
    return ApiError(503, "Recording Error", f"Recording in room '{room_id}' could not start: {reason}")


def recording_not_active(recording_id: str, status: str) -> ApiError:
    return ApiError(409, "Recording Error", f"Recording '{recording_id}' is not active (status: {status})")


def recording_not_complete(recording_id: str, status: str) -> ApiError:
    return ApiError(409, "Recording Error", f"Recording '{recording_id}' is not complete (status: {status})")


def range_not_satisfiable(recording_id: str, size: int) -> ApiError:
    return ApiError(
        416,
        "Recording Error",
        f"Recording '{recording_id}' range not satisfiable. File size: {size}",
        headers={"Content-Range": f"bytes */{size}"},
    )


def temporal_unavailable() -> ApiError:
    return ApiError(503, "Service Unavailable", "The workflow service is not available; try again shortly")


def invalid_parameter(field: str, message: str) -> ApiError:
    return ApiError(422, "Unprocessable Entity", "Invalid request", [{"field": field, "message": message}])


def validation_failed(exc: ValidationError) -> ApiError:
    details = [
        {"field": ".".join(str(part) for part in err["loc"]) or "body", "message": err["msg"]} for err in exc.errors()
    ]
    return ApiError(422, "Unprocessable Entity", "Invalid request", details)
