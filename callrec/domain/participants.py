"""Call participants as the conferencing side reports them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Participant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    role: Literal["moderator", "speaker"] = "speaker"
