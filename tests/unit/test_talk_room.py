"""Talk's room status rules, consent and rendering: which change posts which system message, and what people read."""

from __future__ import annotations

import pytest

from callrec.domain import talk_render, talk_room


@pytest.mark.parametrize(
    ("old", "new", "has_actor", "message"),
    [
        (3, 1, True, "recording_started"),
        (0, 2, False, "audio_recording_started"),  # the fallback actor names it
        (5, 1, True, "recording_started"),
        (1, 0, True, "recording_stopped"),
        (2, 0, True, "audio_recording_stopped"),
        (1, 0, False, None),  # the call ended: nobody stopped it
        (3, 0, True, None),  # stopped before it started
        (1, 5, False, "recording_failed"),
        (2, 5, False, "recording_failed"),  # never audio_ prefixed
        (4, 5, False, None),  # a start that failed posts nothing
        (0, 5, False, None),
        (1, 1, True, None),
    ],
)
def test_system_message_follows_talk(old: int, new: int, has_actor: bool, message: str | None) -> None:
    assert talk_room.system_message(old, new, has_actor=has_actor) == message


@pytest.mark.parametrize(("setting", "room", "needed"), [(0, 1, 0), (1, 0, 1), (2, 0, 0), (2, 1, 1)])
def test_consent_is_the_settings_unless_moderators_choose(setting: int, room: int, needed: int) -> None:
    assert talk_room.effective_consent(setting, room) == needed


def test_actors_and_texts_render_as_talk() -> None:
    assert talk_render.actor_parameter("users", "alice", "Alice") == {
        "type": "user", "id": "alice", "name": "Alice", "mention-id": "alice",
    }  # fmt: skip
    assert talk_render.actor_parameter("guests", "failed-to-get-session", "")["name"] == "Guest"
    assert talk_render.actor_parameter("guests", "g1", "Bob")["name"] == "Bob (guest)"
    assert talk_render.chat_text("recording_started", by_viewer=True) == "You started the video recording"
    assert talk_render.chat_text("audio_recording_stopped", by_viewer=False) == "{actor} stopped the audio recording"
    assert talk_render.chat_text("recording_failed", by_viewer=True) == "The recording failed"
    parameters = {
        "call": {"type": "call", "name": "Room {x}"},
        "file": {"type": "file", "name": "a.mp4", "path": "/R/a.mp4"},
    }
    assert talk_render.parsed("In {call}: {file}, {other}", parameters) == "In Room {x}: /R/a.mp4, {other}"
