"""Meet's recording shape, field selection and the trusted-proxy setting, as pure logic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callrec.api.baseurl import without_default_port
from callrec.api.fields import parse_fields, project
from callrec.cli import load_settings
from callrec.domain.pool import Gap
from callrec.domain.proxies import is_trusted, networks
from callrec.domain.recording import Recording, RecordingStatus
from callrec.domain.recording_info import RECORDING_FIELDS, recording_info, started_info, stopped_info
from callrec.domain.settings import Settings
from callrec.domain.webhooks import recording_payload

RUNNING = Recording(
    recording_id="r--EG_a--b",
    room_id="r",
    room_name="Room",
    status=RecordingStatus.ACTIVE,
    layout="grid",
    encoding="H264_720P_30",
    filename="r--EG_a--b.mp4",
    start_date=1_000,
    duration=2.5,
    size=10,
)


def test_fields_without_a_value_are_left_out_and_the_webhook_data_is_the_same_shape() -> None:
    info = recording_info(RUNNING)
    assert info == {
        "recordingId": "r--EG_a--b",
        "roomId": "r",
        "roomName": "Room",
        "status": "active",
        "layout": "grid",
        "encoding": "H264_720P_30",
        "filename": "r--EG_a--b.mp4",
        "startDate": 1_000,
        "duration": 2.5,
        "size": 10,
    }
    assert recording_payload(RUNNING) == info
    starting = Recording(recording_id="r--EG_a--b", room_id="r", room_name="Room", status=RecordingStatus.STARTING)
    assert recording_info(starting) == {
        "recordingId": "r--EG_a--b",
        "roomId": "r",
        "roomName": "Room",
        "status": "starting",
    }
    lost = RUNNING.model_copy(update={"gaps": [Gap(offset_s=1.0, duration_s=2.0)]})
    assert recording_info(lost)["gaps"] == [{"offset": 1.0, "duration": 2.0}]


def test_a_start_answers_no_duration_end_or_size_and_a_stop_the_time_recorded() -> None:
    assert not {"duration", "endDate", "size"} & set(started_info(RUNNING))
    ending = RUNNING.model_copy(update={"status": RecordingStatus.ENDING, "end_date": 4_500})
    stopped = stopped_info(ending)
    assert stopped["duration"] == 3.5 and stopped["endDate"] == 4_500
    assert list(stopped)[:4] == ["recordingId", "roomId", "roomName", "status"]
    no_start = ending.model_copy(update={"start_date": None, "duration": None})
    assert stopped_info(no_start)["duration"] == 0.0


def test_fields_and_x_fields_combine_as_a_union() -> None:
    assert parse_fields("recordingId, status", "status,size") == {"recordingId", "status", "size"}
    assert parse_fields(None, "size") == {"size"} and parse_fields(" , ", None) == frozenset()
    view = recording_info(RUNNING)
    assert project(view, parse_fields("status", "roomId"), RECORDING_FIELDS) == {"roomId": "r", "status": "active"}
    assert project(view, frozenset({"endDate"}), RECORDING_FIELDS) == {}  # known, no value yet
    assert project(view, frozenset({"nonsense"}), RECORDING_FIELDS) == view  # none known: everything


def test_trusted_proxies_are_checked_when_settings_load(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(trusted_proxies="10.0.0.5, 192.168.0.0/16,::1,10.0.0.5")  # type: ignore[arg-type]
    assert settings.trusted_proxies == ["10.0.0.5/32", "192.168.0.0/16", "::1/128"]
    assert Settings().trusted_proxies == [] and Settings().trusted_networks == ()
    with pytest.raises(ValidationError, match="'proxy.example' is not an IP address or CIDR network"):
        Settings(trusted_proxies="proxy.example")  # type: ignore[arg-type]
    monkeypatch.setenv("CALLREC_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(SystemExit):
        load_settings("api")
    assert "CALLREC_TRUSTED_PROXIES" in capsys.readouterr().err


def test_only_peers_inside_a_trusted_network_are_trusted() -> None:
    trusted = networks(("10.0.0.0/8", "::1/128"))
    assert is_trusted("10.1.2.3", trusted) and is_trusted("::1", trusted) and is_trusted("::ffff:10.0.0.1", trusted)
    assert not is_trusted("11.0.0.1", trusted) and not is_trusted(None, trusted) and not is_trusted("x", trusted)
    assert not is_trusted("10.1.2.3", ())


def test_a_base_url_drops_default_ports_and_a_trailing_slash() -> None:
    assert without_default_port("https://rec.example.org:443/") == "https://rec.example.org"
    assert without_default_port("http://rec.example.org:80/meet/") == "http://rec.example.org/meet"
    assert without_default_port("http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert without_default_port("https://[::1]:443") == "https://[::1]"
