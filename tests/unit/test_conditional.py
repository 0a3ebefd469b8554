"""Conditional requests on a stored file (RFC 9110 section 13): validators, each precondition, their order."""

from __future__ import annotations

import pytest

from callrec.api.conditional import Decision, Validators, evaluate, file_validators, http_date, parse_http_date

SHA = "ab" * 32
STORED = 784111777  # Sun, 06 Nov 1994 08:49:37 GMT
STORED_DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
NOW = STORED + 86400
FILE = Validators(f'"{SHA}"', STORED)
WEAK = file_validators(None, 1000, STORED + 0.75)
SERVE = Decision(None, True)
NOT_MODIFIED = Decision(304, False)
FAILED = Decision(412, False)


def decide(headers: dict[str, str], current: Validators = FILE, method: str = "GET") -> Decision:
    return evaluate(method, headers, current, NOW)


# ------------------------------------------------------------------------- validators


def test_a_recording_with_a_sha256_has_a_strong_etag_and_its_stored_time() -> None:
    found = file_validators(SHA, 1000, STORED + 0.75, ended_ms=1)
    assert found == FILE
    assert found.headers() == {"ETag": f'"{SHA}"', "Last-Modified": STORED_DATE}


def test_a_recording_stored_without_a_sha256_gets_a_weak_etag_from_size_and_time() -> None:
    assert WEAK.etag == f'W/"3e8-{STORED:x}"'
    assert WEAK.last_modified == STORED


def test_without_a_stored_time_the_recordings_end_dates_it_and_a_tag_needs_the_sha256() -> None:
    assert file_validators(None, 1000, None, ended_ms=STORED * 1000 + 999) == Validators(None, STORED)
    assert file_validators(SHA, 1000, None) == Validators(f'"{SHA}"', None)
    assert file_validators(None, 1000, None).headers() == {}


def test_a_malformed_sha256_is_not_used_as_a_tag() -> None:
    assert file_validators('x"y', 10, STORED).etag == f'W/"a-{STORED:x}"'


def test_each_preview_of_a_recording_has_its_own_tag() -> None:
    poster = file_validators(SHA, 10, STORED, variant="poster").etag
    track = file_validators(SHA, 10, STORED, variant="thumbnails.vtt").etag
    assert poster == f'"{SHA}-poster"'
    assert len({poster, track, FILE.etag}) == 3


# ------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "value",
    [STORED_DATE, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "  Sun, 06 Nov 1994 08:49:37 GMT "],
)
def test_the_three_http_date_forms_parse(value: str) -> None:
    assert parse_http_date(value) == STORED


@pytest.mark.parametrize(
    "value",
    [
        "",
        "yesterday",
        "1e999",
        "9" * 5000,
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 99999999 08:49:37 GMT",
        "\u0663\u0663 Nov 1994",
    ],
)
def test_what_is_not_an_http_date_is_none(value: str) -> None:
    assert parse_http_date(value) is None


def test_last_modified_is_an_imf_fixdate() -> None:
    assert http_date(STORED) == STORED_DATE


# ------------------------------------------------------------------------- If-None-Match / If-Modified-Since


def test_no_precondition_serves_the_file_and_its_range() -> None:
    assert decide({}) == SERVE


@pytest.mark.parametrize("value", [f'"{SHA}"', f'W/"{SHA}"', f'"other", "{SHA}"', f' "x" ,W/"{SHA}" ', "*"])
def test_if_none_match_that_matches_weakly_is_304_for_get_and_head(value: str) -> None:
    assert decide({"If-None-Match": value}) == NOT_MODIFIED
    assert decide({"If-None-Match": value}, method="HEAD") == NOT_MODIFIED


def test_a_weak_tag_revalidates_with_if_none_match() -> None:
    assert decide({"If-None-Match": WEAK.etag or ""}, WEAK) == NOT_MODIFIED


@pytest.mark.parametrize("value", ['"other"', f'"{SHA[:-1]}"', "", "garbage", f"{SHA}", f'"{SHA}', ",,,"])
def test_if_none_match_that_does_not_match_serves_the_file(value: str) -> None:
    assert decide({"If-None-Match": value}) == SERVE


def test_if_none_match_on_other_methods_fails_instead_of_304() -> None:
    assert decide({"If-None-Match": "*"}, method="POST") == FAILED


def test_if_modified_since_the_stored_time_or_later_is_304() -> None:
    assert decide({"If-Modified-Since": STORED_DATE}) == NOT_MODIFIED
    assert decide({"If-Modified-Since": http_date(STORED + 60)}) == NOT_MODIFIED


def test_if_modified_since_before_the_stored_time_serves_the_file() -> None:
    assert decide({"If-Modified-Since": http_date(STORED - 1)}) == SERVE


@pytest.mark.parametrize("value", ["not a date", "", http_date(NOW + 60), f"{STORED_DATE}, {STORED_DATE}"])
def test_an_invalid_or_future_if_modified_since_is_ignored(value: str) -> None:
    assert decide({"If-Modified-Since": value}) == SERVE


def test_if_modified_since_without_a_known_time_is_ignored() -> None:
    assert decide({"If-Modified-Since": STORED_DATE}, Validators(f'"{SHA}"', None)) == SERVE


def test_if_modified_since_counts_only_for_get_and_head() -> None:
    assert decide({"If-Modified-Since": STORED_DATE}, method="POST") == Decision(None, False)


def test_if_none_match_wins_over_if_modified_since() -> None:
    # A changed tag is a changed file, whatever the date says (section 13.1.3).
    assert decide({"If-None-Match": '"old"', "If-Modified-Since": STORED_DATE}) == SERVE
    assert decide({"If-None-Match": f'"{SHA}"', "If-Modified-Since": http_date(STORED - 100)}) == NOT_MODIFIED


def test_a_file_without_a_tag_matches_only_star() -> None:
    untagged = Validators(None, STORED)
    assert decide({"If-None-Match": '"anything"'}, untagged) == SERVE
    assert decide({"If-None-Match": "*"}, untagged) == NOT_MODIFIED


# ------------------------------------------------------------------------- If-Match / If-Unmodified-Since


@pytest.mark.parametrize("value", [f'"{SHA}"', f'"a", "{SHA}"', "*"])
def test_if_match_that_matches_strongly_serves_the_file(value: str) -> None:
    assert decide({"If-Match": value}) == SERVE


@pytest.mark.parametrize("value", ['"other"', f'W/"{SHA}"', "garbage", ""])
def test_if_match_that_fails_a_strong_comparison_is_412(value: str) -> None:
    assert decide({"If-Match": value}) == FAILED


def test_if_match_never_matches_a_weak_tag() -> None:
    assert decide({"If-Match": WEAK.etag or ""}, WEAK) == FAILED


def test_if_unmodified_since_before_the_stored_time_is_412() -> None:
    assert decide({"If-Unmodified-Since": http_date(STORED - 1)}) == FAILED
    assert decide({"If-Unmodified-Since": STORED_DATE}) == SERVE


@pytest.mark.parametrize("value", ["not a date", "9" * 5000, http_date(NOW + 60)])
def test_an_invalid_if_unmodified_since_is_ignored(value: str) -> None:
    assert decide({"If-Unmodified-Since": value}) == SERVE


def test_if_match_wins_over_if_unmodified_since() -> None:
    assert decide({"If-Match": f'"{SHA}"', "If-Unmodified-Since": http_date(STORED - 1)}) == SERVE


def test_a_failed_if_match_wins_over_a_matching_if_none_match() -> None:
    assert decide({"If-Match": '"other"', "If-None-Match": f'"{SHA}"'}) == FAILED


def test_a_304_needs_if_match_to_hold_first() -> None:
    assert decide({"If-Match": f'"{SHA}"', "If-None-Match": f'"{SHA}"'}) == NOT_MODIFIED


# ------------------------------------------------------------------------- If-Range


@pytest.mark.parametrize("value", [f'"{SHA}"', STORED_DATE, f' "{SHA}" '])
def test_if_range_with_the_current_strong_tag_or_exact_date_keeps_the_range(value: str) -> None:
    assert decide({"If-Range": value}) == SERVE


@pytest.mark.parametrize(
    "value",
    [
        '"stale"',
        f'W/"{SHA}"',  # a weak tag never passes the strong comparison
        http_date(STORED + 1),  # not exactly Last-Modified
        http_date(STORED - 1),
        f'"{SHA}", "{SHA}"',  # one tag only
        "garbage",
        "",
    ],
)
def test_if_range_that_does_not_hold_asks_for_the_whole_file(value: str) -> None:
    assert decide({"If-Range": value}) == Decision(None, False)


def test_if_range_with_a_weak_validator_of_the_file_asks_for_the_whole_file() -> None:
    assert decide({"If-Range": WEAK.etag or ""}, WEAK) == Decision(None, False)
    assert decide({"If-Range": STORED_DATE}, WEAK) == SERVE


def test_a_304_wins_over_if_range() -> None:
    assert decide({"If-None-Match": f'"{SHA}"', "If-Range": '"stale"'}) == NOT_MODIFIED


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "value",
    ['"' * 10000, "W/" * 5000, "\u00e9\u202e\U0001f600", '"a,b", "c', "\x00", "*, *", "9" * 5000],
)
@pytest.mark.parametrize("name", ["If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"])
def test_hostile_values_decide_something_and_never_raise(name: str, value: str) -> None:
    assert decide({name: value}) in (SERVE, NOT_MODIFIED, FAILED, Decision(None, False))
