"""Which recording server the worker drives, and which backend URL it announces."""

from __future__ import annotations

import pytest

from callrec.domain.settings import Settings


@pytest.fixture(autouse=True)
def no_callrec_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test passes counts, whatever the shell running the suite exports."""
    for name in ("EGRESS", "TALK_RECORDING_SERVER", "RECORDER_URL", "PUBLIC_URL", "API_URL"):
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
