"""`GET /ocs/v2.php/cloud/capabilities`: what Talk clients read to turn their recording UI on.

Only the `spreed` capabilities that concern recording, and only what callrec does: the features `recording-v1`
(start, stop, store, share) and `recording-consent`, and the config `call.recording` (true: a recorder is set up)
and `call.recording-consent` (CALLREC_RECORDING_CONSENT). No credential is needed (Nextcloud answers guests too).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from quart import Blueprint, Response

from callrec.api import schemas
from callrec.api.ocs import ocs_response
from callrec.api.operations import Answer, Who, declare
from callrec.api.services import services

blueprint = Blueprint("talk_capabilities", __name__)


def callrec_version() -> str:
    try:
        return version("callrec")
    except PackageNotFoundError:
        return "0"


@blueprint.get("/ocs/v2.php/cloud/capabilities")
@declare(
    "talkCapabilities",
    "What a Talk client may use (Nextcloud capabilities)",
    tag="Talk",
    security=Who.NONE,
    responses={200: Answer("`capabilities.spreed`: recording features and config", schemas.Ocs)},
)
async def capabilities() -> Response:
    settings = services().settings
    recording = settings.egress != "talk" or settings.talk_recording_server is not None
    numbers = [int(part) if part.isdigit() else 0 for part in callrec_version().split(".")[:3]]
    major, minor, micro = (numbers + [0, 0, 0])[:3]
    spreed = {
        "features": ["recording-v1", "recording-consent"],
        "features-local": [],
        "config": {
            "call": {
                "enabled": True,
                "recording": recording,
                "recording-consent": settings.recording_consent if recording else 0,
            }
        },
        "config-local": {},
        "version": callrec_version(),
    }
    data = {
        "version": {
            "major": major,
            "minor": minor,
            "micro": micro,
            "string": callrec_version(),
            "edition": "",
            "extendedSupport": False,
        },
        "capabilities": {"spreed": spreed},
    }
    return ocs_response(data)
