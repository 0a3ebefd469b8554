"""Temporal over TLS (mutual TLS, a private CA, Temporal Cloud's API key): what `connect` passes to the SDK.

No TLS Temporal runs here: the settings are turned into the SDK's `TLSConfig` and checked, and every way
to get them wrong stops with one line naming the setting. Plain connections are covered by every test that
runs the stack.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from callrec.domain.settings import Settings
from callrec.temporal import connect, tls_config

CA = b"-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
CERT = b"-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"


def settings(**values: object) -> Settings:
    return Settings(api_key="k" * 32, recording_secret="s", **values)  # type: ignore[arg-type]


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, Path]:
    found = {}
    for name, data in (("ca", CA), ("cert", CERT), ("key", KEY)):
        (tmp_path / f"{name}.pem").write_bytes(data)
        found[name] = tmp_path / f"{name}.pem"
    return found


def test_nothing_set_is_a_plain_connection() -> None:
    assert tls_config(settings()) is None  # the SDK's default: TLS only with an API key
    assert tls_config(settings(temporal_tls=False)) is False
    assert tls_config(settings(temporal_tls=True)) is True  # TLS with the system's roots


def test_settings_from_the_environment_build_a_mutual_tls_config(
    pems: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLREC_TEMPORAL_TLS_CA", str(pems["ca"]))
    monkeypatch.setenv("CALLREC_TEMPORAL_TLS_CERT", str(pems["cert"]))
    monkeypatch.setenv("CALLREC_TEMPORAL_TLS_KEY", str(pems["key"]))
    monkeypatch.setenv("CALLREC_TEMPORAL_TLS_SERVER_NAME", "temporal.internal")
    assert tls_config(settings()) == TLSConfig(
        server_root_ca_cert=CA, domain="temporal.internal", client_cert=CERT, client_private_key=KEY
    )


def test_a_ca_alone_turns_tls_on(pems: dict[str, Path]) -> None:
    assert tls_config(settings(temporal_tls_ca=pems["ca"])) == TLSConfig(server_root_ca_cert=CA)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temporal_tls_ca": "missing/ca.pem"}, "CALLREC_TEMPORAL_TLS_CA: cannot read missing/ca.pem: No such file"),
        ({"temporal_tls_cert": "cert", "temporal_tls_key": "missing.key"}, "CALLREC_TEMPORAL_TLS_KEY: cannot read"),
        ({"temporal_tls_cert": "cert"}, "CALLREC_TEMPORAL_TLS_CERT is set but CALLREC_TEMPORAL_TLS_KEY is not"),
        ({"temporal_tls_key": "key"}, "CALLREC_TEMPORAL_TLS_KEY is set but CALLREC_TEMPORAL_TLS_CERT is not"),
        ({"temporal_tls": False, "temporal_tls_ca": "ca"}, "CALLREC_TEMPORAL_TLS is false but CALLREC_TEMPORAL_TLS_CA"),
        ({"temporal_tls_ca": "not-pem"}, "CALLREC_TEMPORAL_TLS_CA: "),
    ],
)
def test_a_wrong_setting_stops_with_one_line_naming_it(
    pems: dict[str, Path], tmp_path: Path, values: dict[str, str], message: str
) -> None:
    (tmp_path / "not-pem").write_text("hello")
    resolved = {
        name: (
            value if isinstance(value, bool) or value.startswith("missing") else str(pems.get(value, tmp_path / value))
        )
        for name, value in values.items()
    }
    with pytest.raises(SystemExit) as stopped:
        tls_config(settings(**resolved))
    text = str(stopped.value)
    assert text.startswith(message) and "\n" not in text, text
    if values.get("temporal_tls_ca") == "not-pem":
        assert "is not a PEM file" in text


async def test_connect_checks_the_files_before_it_dials(tmp_path: Path) -> None:
    # Nothing listens on this address: a missing file must stop it first, with the setting's name.
    with pytest.raises(SystemExit, match="^CALLREC_TEMPORAL_TLS_CA: cannot read"):
        await connect(settings(temporal_address="127.0.0.1:1", temporal_tls_ca=tmp_path / "absent.pem"))
