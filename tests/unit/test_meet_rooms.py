"""The `regex` name filter's own engine (SQLite's): what it accepts, what it refuses with Meet's wording, and that
it finds what Python's `re` finds, in time linear in the name (issue 17, theme 7)."""

from __future__ import annotations

import random
import re

import pytest

from callrec.storage.textmatch import InvalidPattern, compile_pattern, search

PATTERNS = [
    "^team-.*",
    "a|b",
    "(ab)+c",
    "[a-c]{2,3}$",
    "x?y",
    r"\d+",
    "^$",
    "a{3}",
    "[^a-z]",
    "(?:foo|bar)baz",
    "we.kly",
    r"[\w-]+x",
    "c.*t",
    "[^A-C]b",
    r"A\.b",
    "a{2,}?b",
    r"\s\S",
    "[]a]",
    "(a|)b",
]
WORDS = ["team-a", "xteam-", "abab c", "abc", "cabbc", "y", "12", "", "aaa", "AB", "foobaz", "weekly", "ab-x", "cat"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_what_python_re_matches(pattern: str) -> None:
    rnd = random.Random(pattern)
    texts = WORDS + ["".join(rnd.choices("abcxyzAB-. 19]", k=rnd.randrange(12))) for _ in range(200)]
    for case_insensitive in (False, True):
        program = compile_pattern(pattern, case_insensitive)
        flags = re.IGNORECASE if case_insensitive else 0
        for text in texts:
            assert search(program, text) == (re.search(pattern, text, flags) is not None), (pattern, text)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(", "Invalid regular expression pattern"),
        ("a)", "Invalid regular expression pattern"),
        ("[a-", "Invalid regular expression pattern"),
        ("a" * 101, "Regular expression pattern cannot exceed 100 characters"),
        ("a{256}", "Regular expression quantifiers cannot exceed 255"),
        ("a{1,1000000}", "Regular expression quantifiers cannot exceed 255"),
        (r"(a)\1", "Invalid regular expression pattern"),
        ("(?=a)", "Invalid regular expression pattern"),
        ("(?<=a)b", "Invalid regular expression pattern"),
        ("(?i)a", "Invalid regular expression pattern"),
        (r"\bword", "Invalid regular expression pattern"),
        ("a**", "Invalid regular expression pattern"),
        ("*a", "Invalid regular expression pattern"),
        ("[[:alpha:]]", "Invalid regular expression pattern"),
        ("a{3,2}", "Invalid regular expression pattern"),
        ("((a{0,255}){0,255}){0,9}", "Regular expression pattern is too complex"),
        # repeats of nothing emit no step, but compiling them is still work: counted, refused before it runs away
        ("(((){255}){255}){200}", "Regular expression pattern is too complex"),
        ("((((((?:){255}){255}){255}){255}){255})", "Regular expression pattern is too complex"),
        ("((a{0}){255}){255}", "Regular expression pattern is too complex"),
    ],
)
def test_refuses_with_meets_wording(pattern: str, message: str) -> None:
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(pattern)
    assert str(raised.value) == message


def test_no_catastrophic_backtracking() -> None:
    """The patterns that make a backtracking engine run for ages answer right away here (a run away would be
    stopped by the suite's timeout), and right."""
    cases = {"^(a+)+$": False, "(a|aa)*b": False, "(a*)*b": False, "(a?){40}a{40}": True, "(.*a){20}": True}
    for pattern, found in cases.items():
        program = compile_pattern(pattern)
        for size in (40, 128, 256):
            assert search(program, "a" * size + "!") is found, (pattern, size)
