"""The console session's pure rules: CSRF double submit, same-origin, the cookie's contents, safe redirects."""

from __future__ import annotations

import pytest

from callrec.api.console.session import (
    credential_header,
    csrf_matches,
    new_csrf,
    parse_cookies,
    read_session,
    same_origin,
    session_value,
)

HOSTS = ["127.0.0.1:8080", "callrec.example"]


def test_a_csrf_token_counts_only_when_it_is_the_cookies() -> None:
    token = new_csrf()
    assert len(token) >= 32 and token != new_csrf()
    assert csrf_matches(token, token)
    assert not csrf_matches(token, new_csrf())
    assert not csrf_matches("", "")  # an empty cookie and an empty field are no match
    assert not csrf_matches(None, token) and not csrf_matches(token, None)


@pytest.mark.parametrize(
    ("origin", "site", "fine"),
    [
        ("http://127.0.0.1:8080", "same-origin", True),
        ("https://callrec.example", None, True),  # a browser without Sec-Fetch-Site
        (None, None, True),  # no Origin: the CSRF token alone decides
        ("null", "same-origin", True),  # a form POST under Referrer-Policy: no-referrer
        ("null", None, False),  # an opaque origin nobody vouches for
        ("https://evil.example", "cross-site", False),
        ("https://evil.example", None, False),
        ("http://127.0.0.1:8080", "same-site", False),  # a sibling host is another site for the session
        ("http://127.0.0.1:9999", "same-origin", False),
        ("not a url", None, False),
    ],
)
def test_same_origin(origin: str | None, site: str | None, fine: bool) -> None:
    assert same_origin(origin, site, HOSTS) is fine


def test_the_session_cookie_holds_a_kind_and_a_token() -> None:
    assert read_session(session_value("user", "a.b.c")) == ("user", "a.b.c")
    assert read_session(session_value("member", "x.y.z")) == ("member", "x.y.z")
    for junk in (None, "", "admin.a.b.c", "user.", "user", "member." + "x" * 5000):
        assert read_session(junk) is None
    assert credential_header("user", "t") == (b"authorization", b"Bearer t")
    assert credential_header("member", "t") == (b"x-room-member-token", b"t")


def test_cookies_are_parsed_leniently() -> None:
    assert parse_cookies("callrec_csrf=abc-_1; callrec_session=user.a.b") == {
        "callrec_csrf": "abc-_1",
        "callrec_session": "user.a.b",
    }
    assert parse_cookies('broken="') == {}
