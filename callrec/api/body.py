"""Typed JSON bodies: malformed JSON is a 400, a body that does not fit the model a 422 with details."""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from quart import request

from callrec.api.errors import malformed_body, validation_failed

M = TypeVar("M", bound=BaseModel)


async def json_body(model: type[M]) -> M:
    raw = await request.get_data()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise malformed_body() from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from exc
