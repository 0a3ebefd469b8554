"""The pure parts of CALLREC_MEDIA_OFFLOAD: X-Accel-Redirect targets, header safety, the start-up check."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callrec.api.offload import accel_presigned_target, accel_target, header_safe
from callrec.domain.settings import Settings


def test_a_key_is_percent_encoded_under_the_prefix() -> None:
    assert accel_target("/_callrec_media/", "recordings/r1/a.mp4") == "/_callrec_media/recordings/r1/a.mp4"
    assert accel_target("/internal", "recordings/r 1/ä?#%.mp4") == "/internal/recordings/r%201/%C3%A4%3F%23%25.mp4"


@pytest.mark.parametrize("key", ["a\r\nX-Injected: 1", "a\nb", "a\x7fb", "a\tb", "a b", "a;b=c,d"])
def test_no_key_gets_into_the_header_raw(key: str) -> None:
    target = accel_target("/_callrec_media/", f"recordings/{key}.mp4")
    assert header_safe(target) == target
    assert all("\x21" <= c <= "\x7e" for c in target)
    assert "\r" not in target and "\n" not in target and " " not in target


def test_a_presigned_url_keeps_its_path_and_query_under_the_prefix() -> None:
    url = "http://minio:9000/callrec/recordings/r/a.mp4?X-Amz-Expires=300&X-Amz-Signature=ab12"
    assert accel_presigned_target("/_callrec_media/", url) == (
        "/_callrec_media/callrec/recordings/r/a.mp4?X-Amz-Expires=300&X-Amz-Signature=ab12"
    )
    assert accel_presigned_target("/m/", "http://s3/b/k") == "/m/b/k"


@pytest.mark.parametrize("value", ["", "a b", "a\r\nb", "a\x00", "é"])
def test_an_unsafe_header_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        header_safe(value)
    if value and "\n" not in value:  # urlsplit drops CR and LF itself
        with pytest.raises(ValueError):
            accel_presigned_target("/m/", f"http://s3/b/k?q={value}x")


def test_presigned_on_a_local_store_stops_the_api_with_one_line() -> None:
    with pytest.raises(SystemExit, match="CALLREC_MEDIA_OFFLOAD=presigned needs an S3 store"):
        Settings(media_offload="presigned").require_media_offload()
    Settings(media_offload="presigned", s3_endpoint="minio:9000").require_media_offload()
    Settings(media_offload="x-accel").require_media_offload()


def test_the_settings_default_to_streaming_and_refuse_a_bad_prefix() -> None:
    settings = Settings()
    assert (settings.media_offload, settings.media_offload_prefix) == ("none", "/_callrec_media/")
    assert Settings(media_offload="X-Accel").media_offload == "x-accel"
    for prefix in ("no-slash/", "/a b/", "/a\n/", "/missing-trailing"):
        with pytest.raises(ValidationError):
            Settings(media_offload_prefix=prefix)
    with pytest.raises(ValidationError):
        Settings(media_offload="sendfile")
