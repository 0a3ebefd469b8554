"""Which recording server the worker drives, which backend URL it announces, and the secrets the API needs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from callrec.domain.publish import ice_server_links
from callrec.domain.settings import Settings
from callrec.storage.private import kept_secret


@pytest.fixture(autouse=True)
def no_callrec_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts, whatever the shell running the suite exports."""
    for name in ("EGRESS", "TALK_RECORDING_SERVER", "RECORDER_URL", "PUBLIC_URL", "API_URL", "API_KEY",
                 "TOKEN_SECRET", "DEV_MODE"):  # fmt: skip
        monkeypatch.delenv(f"CALLREC_{name}", raising=False)


def test_talk_egress_without_a_recording_server_stops_with_a_clear_message() -> None:
    settings = Settings(egress="talk")
    with pytest.raises(SystemExit) as exc:
        _ = settings.egress_url
    message = str(exc.value)
    assert "CALLREC_TALK_RECORDING_SERVER" in message and "CALLREC_EGRESS=talk" in message


def test_talk_egress_from_the_environment_without_a_recording_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLREC_EGRESS", "talk")
    with pytest.raises(SystemExit, match="CALLREC_TALK_RECORDING_SERVER is not set"):
        _ = Settings().egress_url


def test_egress_url_is_the_recorder_or_the_talk_recording_server() -> None:
    assert Settings(recorder_url="http://rec:8090/").egress_url == "http://rec:8090"
    talk = Settings(egress="talk", recorder_url="http://rec:8090", talk_recording_server="http://talk-rec:8000/")
    assert talk.egress_url == "http://talk-rec:8000"


def test_backend_url_is_the_public_url_else_the_api_url() -> None:
    assert Settings(api_url="http://127.0.0.1:8080/").backend_url == "http://127.0.0.1:8080"
    public = Settings(api_url="http://127.0.0.1:8080", public_url="https://rec.example.com/")
    assert public.backend_url == "https://rec.example.com"


GOOD_KEY = "k" * 32
GOOD_TOKEN_SECRET = "t" * 32


@pytest.mark.parametrize(
    ("values", "setting", "problem"),
    [
        ({"token_secret": GOOD_TOKEN_SECRET}, "CALLREC_API_KEY", "not set"),
        ({"api_key": "k" * 31, "token_secret": GOOD_TOKEN_SECRET}, "CALLREC_API_KEY", "too short"),
        ({"api_key": GOOD_KEY}, "CALLREC_TOKEN_SECRET", "not set"),
        ({"api_key": GOOD_KEY, "token_secret": "t" * 31}, "CALLREC_TOKEN_SECRET", "too short"),
        ({"api_key": GOOD_KEY, "token_secret": "é" * 15}, "CALLREC_TOKEN_SECRET", "too short"),  # 30 bytes
        ({"api_key": GOOD_KEY, "token_secret": GOOD_KEY}, "CALLREC_TOKEN_SECRET", "not be the API key"),
        ({"api_key": "short", "dev_mode": True}, "CALLREC_TOKEN_SECRET", "not set"),
    ],
)
def test_the_api_refuses_missing_or_weak_secrets(values: dict[str, object], setting: str, problem: str) -> None:
    with pytest.raises(SystemExit) as exc:
        Settings(**values).require_api_secrets()  # type: ignore[arg-type]
    message = str(exc.value)
    assert setting in message and problem in message and "\n" not in message


def test_good_secrets_pass_and_dev_mode_allows_the_dev_key() -> None:
    Settings(api_key=GOOD_KEY, token_secret=GOOD_TOKEN_SECRET).require_api_secrets()
    Settings(api_key="callrec-dev-key", token_secret=GOOD_TOKEN_SECRET, dev_mode=True).require_api_secrets()


def test_the_token_key_is_never_derived_from_the_api_key() -> None:
    assert Settings(api_key=GOOD_KEY, token_secret=GOOD_TOKEN_SECRET).token_key == GOOD_TOKEN_SECRET
    with pytest.raises(SystemExit, match="CALLREC_TOKEN_SECRET is not set"):
        _ = Settings(api_key=GOOD_KEY).token_key


def test_kept_secrets_are_private_and_stable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = kept_secret(data_dir, "token-secret")
    assert len(first.encode()) >= 32 and kept_secret(data_dir, "token-secret") == first
    assert stat.S_IMODE((data_dir / "token-secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert kept_secret(data_dir, "recording-secret") != first
    (data_dir / "token-secret").chmod(0o644)
    assert kept_secret(data_dir, "token-secret") == first
    assert stat.S_IMODE((data_dir / "token-secret").stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []  # no staged leftovers


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({}, "is not set"),
        ({"publish_secret": "p" * 31}, "too short"),
        ({"publish_secret": GOOD_TOKEN_SECRET, "token_secret": GOOD_TOKEN_SECRET}, "must not be CALLREC_TOKEN_SECRET"),
        ({"publish_secret": GOOD_KEY, "api_key": GOOD_KEY}, "must not be CALLREC_API_KEY"),
        ({"publish_secret": "r" * 40, "recording_secret": "r" * 40}, "must not be CALLREC_RECORDING_SECRET"),
    ],
)
def test_the_publish_secret_is_its_own(values: dict[str, object], problem: str) -> None:
    with pytest.raises(SystemExit, match="CALLREC_PUBLISH_SECRET") as stopped:
        Settings(**values).require_publish_secret()  # type: ignore[arg-type]
    assert problem in str(stopped.value)
    assert Settings(publish_secret="q" * 40, token_secret=GOOD_TOKEN_SECRET).require_publish_secret() == "q" * 40


def test_ice_servers_become_rfc_9725_link_headers_with_turn_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    turn = {"url": "turn:turn.example.org?transport=udp", "username": "u", "credential": 'p"w'}
    servers = json.dumps(["stun:stun.example.org:3478", turn])
    monkeypatch.setenv("CALLREC_WHIP_ICE_SERVERS", servers)
    assert ice_server_links(Settings().whip_ice_servers) == [
        '<stun:stun.example.org:3478>; rel="ice-server"',
        '<turn:turn.example.org?transport=udp>; rel="ice-server"; username="u"; credential="p\\"w"; '
        'credential-type="password"',
    ]
    for bad in ('["http://example.org"]', '["turn:turn.example.org"]', '["stun:a> ; rel=x"]'):
        monkeypatch.setenv("CALLREC_WHIP_ICE_SERVERS", bad)
        with pytest.raises(ValidationError):
            Settings()


def test_recording_consent_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLREC_RECORDING_CONSENT", "2")
    assert Settings().recording_consent == 2
    monkeypatch.setenv("CALLREC_RECORDING_CONSENT", "3")
    with pytest.raises(ValidationError, match="recording_consent"):
        Settings()
