"""Talk's room recording status (0-5) from a recording's status and kind."""

from __future__ import annotations

import pytest

from callrec.domain.recording import RecordingKind, RecordingStatus, talk_status

VIDEO, AUDIO = RecordingKind.VIDEO, RecordingKind.AUDIO


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (RecordingStatus.STARTING, VIDEO, 3),
        (RecordingStatus.STARTING, AUDIO, 4),
        (RecordingStatus.ACTIVE, VIDEO, 1),
        (RecordingStatus.ACTIVE, AUDIO, 2),
        (RecordingStatus.ENDING, AUDIO, 2),  # until the file is stored the room still shows it recording
        (RecordingStatus.FAILED, AUDIO, 5),
        (RecordingStatus.COMPLETE, VIDEO, 0),
        (RecordingStatus.LIMIT_REACHED, VIDEO, 0),
        (RecordingStatus.ABORTED, AUDIO, 0),
    ],
)
def test_talk_status(status: RecordingStatus, kind: RecordingKind, expected: int) -> None:
    assert talk_status(status, kind) == expected
