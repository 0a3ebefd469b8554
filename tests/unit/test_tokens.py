"""Access tokens: what each grants, and every way a token is refused."""

from __future__ import annotations

import time

import jwt
import pytest

from callrec.domain.tokens import (
    ALL_PERMISSIONS,
    InvalidToken,
    Permission,
    member_token,
    read_token,
    user_token,
)

SECRET = "a-test-token-secret-of-32-bytes!"


def test_user_tokens_carry_their_role() -> None:
    admin = read_token(SECRET, user_token(SECRET, "alice", "admin", 60), "user")
    assert (admin.kind, admin.subject, admin.role, admin.room_id) == ("user", "alice", "admin", None)
    assert admin.permissions == ALL_PERMISSIONS and admin.is_admin
    user = read_token(SECRET, user_token(SECRET, "bob", "user", 60), "user")
    assert user.permissions == {Permission.LIST, Permission.PLAY, Permission.DOWNLOAD} and not user.is_admin


def test_member_tokens_are_scoped_to_their_room() -> None:
    moderator = read_token(SECRET, member_token(SECRET, "room-a", "Alice", "moderator", 60), "member")
    assert (moderator.kind, moderator.room_id, moderator.role) == ("member", "room-a", "moderator")
    assert moderator.permissions == ALL_PERMISSIONS
    speaker = read_token(SECRET, member_token(SECRET, "room-a", "Bob", "speaker", 60), "member")
    assert Permission.DELETE not in speaker.permissions and Permission.CONTROL not in speaker.permissions
    narrowed = member_token(SECRET, "room-a", "Eve", "moderator", 60, frozenset({Permission.PLAY}))
    assert read_token(SECRET, narrowed, "member").permissions == {Permission.PLAY}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["canRecord"], {Permission.CONTROL}),
        (["canRetrieveRecordings"], {Permission.LIST, Permission.PLAY, Permission.DOWNLOAD}),
        (["canDeleteRecordings", "recordingPlay"], {Permission.DELETE, Permission.PLAY}),
    ],
)
def test_old_permission_names_are_aliases(names: list[str], expected: set[Permission]) -> None:
    now = int(time.time())
    claims = {"iss": "callrec", "iat": now, "exp": now + 60, "typ": "member", "sub": "x", "room": "r",
              "role": "speaker", "permissions": names}  # fmt: skip
    assert read_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"), "member").permissions == expected


def test_refused_tokens() -> None:
    expired = user_token(SECRET, "alice", "admin", -1)
    with pytest.raises(InvalidToken, match="expired"):
        read_token(SECRET, expired, "user")
    with pytest.raises(InvalidToken):
        read_token("another-token-secret-of-32-bytes", user_token(SECRET, "alice", "admin", 60), "user")
    with pytest.raises(InvalidToken, match="not a member token"):
        read_token(SECRET, user_token(SECRET, "alice", "admin", 60), "member")
    with pytest.raises(InvalidToken, match="not a user token"):
        read_token(SECRET, member_token(SECRET, "r", "Alice", "moderator", 60), "user")
    header, payload, signature = user_token(SECRET, "alice", "user", 60).split(".")
    forged_payload = jwt.utils.base64url_encode(b'{"sub":"alice","role":"admin","typ":"user"}').decode()
    with pytest.raises(InvalidToken):
        read_token(SECRET, f"{header}.{forged_payload}.{signature}", "user")
    unsigned = jwt.encode({"sub": "a", "role": "admin", "typ": "user", "iss": "callrec", "iat": 0,
                           "exp": int(time.time()) + 60}, None, algorithm="none")  # fmt: skip
    with pytest.raises(InvalidToken):
        read_token(SECRET, unsigned, "user")
    now = int(time.time())
    bad_permission = {"iss": "callrec", "iat": now, "exp": now + 60, "typ": "member", "sub": "x", "room": "r",
                      "role": "speaker", "permissions": ["everything"]}  # fmt: skip
    with pytest.raises(InvalidToken, match="unknown permission"):
        read_token(SECRET, jwt.encode(bad_permission, SECRET, algorithm="HS256"), "member")
    with pytest.raises(InvalidToken):
        read_token(SECRET, "not-a-jwt", "user")


def test_member_subject_is_a_minted_identity_not_the_chosen_name() -> None:
    first = read_token(SECRET, member_token(SECRET, "room-a", "Alice", "moderator", 60), "member")
    second = read_token(SECRET, member_token(SECRET, "room-a", "Alice", "moderator", 60), "member")
    assert first.name == second.name == "Alice"
    assert first.subject.startswith("member:") and second.subject.startswith("member:")
    assert first.subject != second.subject and "Alice" not in first.subject
    given = member_token(SECRET, "room-a", "Alice", "speaker", 60, member_id="member:abc", generation=3)
    assert (read_token(SECRET, given, "member").subject, read_token(SECRET, given, "member").generation) == (
        "member:abc",
        3,
    )


def test_member_token_generation() -> None:
    now = int(time.time())
    claims = {"iss": "callrec", "iat": now, "exp": now + 60, "typ": "member", "sub": "x", "room": "r",
              "role": "speaker", "permissions": []}  # fmt: skip
    # Tokens from before generations existed count as generation 0 (every room's first).
    assert read_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"), "member").generation == 0
    for bad in (-1, "1", True, 1.5):
        with pytest.raises(InvalidToken, match="generation"):
            read_token(SECRET, jwt.encode(claims | {"gen": bad}, SECRET, algorithm="HS256"), "member")
