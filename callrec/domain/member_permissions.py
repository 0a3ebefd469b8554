"""Registered room members' permissions, named as OpenVidu Meet names them (its `MeetRoomMemberPermissions`).

A member has a base role (`moderator` or `speaker`) and optional custom permissions that override the role's;
its effective permissions are the role's with the overrides applied. Meet's current keys are the ones served;
the deprecated `can*` spellings of 3.8 are accepted on input (`canRetrieveRecordings` grants the three retrieval
keys). callrec enforces the recording keys (its `Permission`s); the meeting keys are kept and served as given,
for clients that read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callrec.domain.tokens import Permission

RECORDING_KEYS = ("recordingControl", "recordingList", "recordingPlay", "recordingDownload", "recordingDelete")
MEETING_KEYS = (
    "meetingJoin",
    "meetingRead",
    "roomShareAccessLinks",
    "participantPromote",
    "participantKick",
    "participantMute",
    "meetingEnd",
    "mediaPublishVideo",
    "mediaPublishAudio",
    "mediaShareScreen",
    "chatRead",
    "chatWrite",
    "mediaChangeVirtualBackground",
)
KEYS = RECORDING_KEYS + MEETING_KEYS
DEPRECATED: dict[str, tuple[str, ...]] = {
    "canRecord": ("recordingControl",),
    "canRetrieveRecordings": ("recordingList", "recordingPlay", "recordingDownload"),
    "canDeleteRecordings": ("recordingDelete",),
    "canJoinMeeting": ("meetingJoin",),
    "canShareAccessLinks": ("roomShareAccessLinks",),
    "canMakeModerator": ("participantPromote",),
    "canKickParticipants": ("participantKick",),
    "canEndMeeting": ("meetingEnd",),
    "canPublishVideo": ("mediaPublishVideo",),
    "canPublishAudio": ("mediaPublishAudio",),
    "canShareScreen": ("mediaShareScreen",),
    "canReadChat": ("chatRead",),
    "canWriteChat": ("chatWrite",),
    "canChangeVirtualBackground": ("mediaChangeVirtualBackground",),
}
ROLES = ("moderator", "speaker")
_SPEAKER_DENIED = {
    "recordingControl",
    "recordingDelete",
    "roomShareAccessLinks",
    "participantPromote",
    "participantKick",
    "participantMute",
    "meetingEnd",
}
ROLE_PERMISSIONS: dict[str, dict[str, bool]] = {
    "moderator": dict.fromkeys(KEYS, True),
    "speaker": {key: key not in _SPEAKER_DENIED for key in KEYS},
}


class InvalidPermissions(ValueError):
    pass


def normalize(given: Mapping[str, Any]) -> dict[str, bool]:
    """`given` under the current keys: deprecated spellings first, so a current key always wins over its alias.

    Raises InvalidPermissions naming an unknown key or a value that is not a boolean.
    """
    found: dict[str, bool] = {}
    for key, value in given.items():
        if key not in DEPRECATED and key not in KEYS:
            raise InvalidPermissions(f"Unknown permission '{key}'")
        if not isinstance(value, bool):
            raise InvalidPermissions(f"Permission '{key}' must be a boolean")
    for key, value in given.items():
        for current in DEPRECATED.get(key, ()):
            found[current] = value
    for key, value in given.items():
        if key in KEYS:
            found[key] = value
    return found


def effective(base_role: str, custom: Mapping[str, bool] | None) -> dict[str, bool]:
    """The role's permissions with the member's custom ones applied over them."""
    return ROLE_PERMISSIONS[base_role] | dict(custom or {})


def effective_recording_permissions(base_role: str, custom: Mapping[str, bool] | None) -> frozenset[Permission]:
    granted = effective(base_role, custom)
    return frozenset(Permission(key) for key in RECORDING_KEYS if granted.get(key))
