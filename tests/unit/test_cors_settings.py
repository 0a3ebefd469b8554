"""`CALLREC_CORS_ORIGINS`: which browser origins may call the API, read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callrec.domain.settings import Settings


def test_no_origins_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLREC_CORS_ORIGINS", raising=False)
    assert Settings().cors_origins == []


@pytest.mark.parametrize(
    "value",
    [
        "https://app.example.com, http://localhost:3000/",
        '["https://app.example.com", "http://localhost:3000"]',
        "HTTPS://App.Example.com,http://localhost:3000,https://app.example.com",
    ],
)
def test_origins_are_comma_separated_or_a_json_list(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CALLREC_CORS_ORIGINS", value)
    assert Settings().cors_origins == ["https://app.example.com", "http://localhost:3000"]


def test_any_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLREC_CORS_ORIGINS", "*")
    assert Settings().cors_origins == ["*"]


@pytest.mark.parametrize("value", ["https://app.example.com/path", "app.example.com", "ftp://x.example", "null"])
def test_what_is_not_an_origin_stops_the_settings_with_its_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CALLREC_CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings()
