"""Which webhook event a recording's status is announced by (Meet's), who gets it, and a body serialized as
`JSON.stringify` would (issue 17, theme 8)."""

from __future__ import annotations

import json

from callrec.domain.recording import RecordingStatus
from callrec.domain.webhooks import WebhookEndpoint, WebhookEvent, status_event


def test_statuses_map_to_meets_events() -> None:
    assert status_event(RecordingStatus.STARTING) == "recordingStarted"
    assert status_event(RecordingStatus.ACTIVE) == "recordingUpdated"
    assert status_event(RecordingStatus.ENDING) == "recordingUpdated"
    for final in (
        RecordingStatus.COMPLETE,
        RecordingStatus.LIMIT_REACHED,
        RecordingStatus.FAILED,
        RecordingStatus.ABORTED,
    ):
        assert status_event(final) == "recordingEnded"


def test_the_old_recording_failed_filter_still_gets_failures() -> None:
    old = WebhookEndpoint(url="http://x/h", secret="s" * 16, events=["recordingFailed"])
    assert old.wants("recordingEnded", "failed")
    assert not old.wants("recordingEnded", "complete") and not old.wants("recordingEnded")
    assert not old.wants("meetingStarted")
    every = WebhookEndpoint(url="http://x/h", secret="s" * 16)
    assert every.wants("meetingEnded") and every.wants("recordingEnded", "aborted")


def test_body_is_what_json_stringify_makes() -> None:
    data = {"roomName": 'Café ☕ "q"', "duration": 2.0, "size": 10, "ratio": 1.5, "nested": [{"d": 3.0}]}
    event = WebhookEvent(event="recordingEnded", creation_date=1700000000000, data=data, idempotency_key="k")
    body = event.body().decode()
    assert body == (
        '{"event":"recordingEnded","creationDate":1700000000000,"data":{"roomName":"Café ☕ \\"q\\"",'
        '"duration":2,"size":10,"ratio":1.5,"nested":[{"d":3}]}}'
    )
    assert json.loads(body)["data"]["ratio"] == 1.5
