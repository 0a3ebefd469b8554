"""Egress through LiveKit (`CALLREC_EGRESS=livekit`), with the official `livekit-api` client.

The same activity names and payloads as `EgressActivities`, so `RecordingWorkflow` does not know which
backend records:

- `start_egress`: `Egress.StartRoomCompositeEgress` for the room (LiveKit room name = our room id), with the
  layout, encoding and kind mapped by `callrec.domain.livekit`, and one file output that LiveKit uploads into
  our own bucket at `staging/{recording_id}/livekit.{mp4|ogg}`; LiveKit's egress id goes into the catalog row
  (`RecordingRow.egress_id`), where the stop and the webhook receiver (`callrec.api.webhooks.livekit`) find it.
- `stop_egress`: `Egress.StopEgress` with that id.

LiveKit answers errors as Twirp errors: a 4xx (`ServerError`, alias `TwirpError`) is final, `EgressRejected`,
or `EgressNotFound` for `not_found` on stop; a 5xx, a network error or a timeout is retried by the activity's
retry policy. A stop of an egress that is already ending or over (`failed_precondition`) is done: LiveKit's
`egress_ended` webhook tells the rest. A retried start first looks for the egress an earlier attempt may have
started (the catalog, then LiveKit's active egresses of the room with our file path), so a retry after a lost
answer does not record the room twice.
"""

from __future__ import annotations

import aiohttp
from livekit.api import LiveKitAPI, ServerError, ServerErrorCode
from livekit.protocol.egress import ListEgressRequest, StopEgressRequest
from temporalio import activity
from temporalio.exceptions import ApplicationError

from callrec.domain.livekit import S3Target, composite_request, staging_key
from callrec.domain.recording import EgressStart, EgressStop
from callrec.domain.settings import Settings
from callrec.storage.catalog import Catalog

DEFAULT_TIMEOUT_S = 10.0  # below the workflow's 15 s start-to-close timeout of both activities


def _rejected(action: str, err: ServerError) -> ApplicationError:
    return ApplicationError(
        f"LiveKit refused to {action} the egress ({err.status} {err.code}): {err.message}",
        type="EgressRejected",
        non_retryable=True,
    )


def _not_found(detail: str) -> ApplicationError:
    return ApplicationError(
        f"LiveKit does not know this recording's egress: {detail}", type="EgressNotFound", non_retryable=True
    )


class LiveKitEgressActivities:
    def __init__(self, settings: Settings, catalog: Catalog, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not (settings.livekit_url and settings.livekit_api_key and settings.livekit_api_secret):
            raise SystemExit(
                "CALLREC_LIVEKIT_URL, CALLREC_LIVEKIT_API_KEY and CALLREC_LIVEKIT_API_SECRET must be set "
                "(CALLREC_EGRESS=livekit needs them)"
            )
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise SystemExit(
                "CALLREC_EGRESS=livekit needs an S3 object store that LiveKit Egress uploads to: "
                "set CALLREC_S3_ENDPOINT, CALLREC_S3_ACCESS_KEY and CALLREC_S3_SECRET_KEY"
            )
        self.url = settings.livekit_url
        self.api_key = settings.livekit_api_key
        self.api_secret = settings.livekit_api_secret
        self.catalog = catalog
        self.timeout_s = timeout_s
        self.target = S3Target(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
        )

    def _client(self) -> LiveKitAPI:
        """A client for one activity run: it owns an aiohttp session, closed by `async with`."""
        return LiveKitAPI(self.url, self.api_key, self.api_secret, timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def _started_before(self, livekit: LiveKitAPI, request: EgressStart) -> str | None:
        """The egress an earlier attempt of this start got going, if any."""
        row = await self.catalog.get_recording(request.recording_id)
        if row is not None and row.egress_id:
            return row.egress_id
        ours = staging_key(request.recording_id, request.kind)
        listed = await livekit.egress.list_egress(ListEgressRequest(room_name=request.room_id, active=True))
        for info in listed.items:
            if any(output.filepath == ours for output in info.room_composite.file_outputs):
                return info.egress_id
        return None

    @activity.defn(name="start_egress")
    async def start_egress(self, request: EgressStart) -> None:
        body = composite_request(request, self.target)
        try:
            async with self._client() as livekit:
                egress_id = await self._started_before(livekit, request) if activity.info().attempt > 1 else None
                if egress_id is None:
                    info = await livekit.egress.start_room_composite_egress(body)
                    egress_id = info.egress_id
        except ServerError as err:
            if err.status < 500:
                raise _rejected("start", err) from err
            raise RuntimeError(f"LiveKit failed to start the egress ({err.status} {err.code}): {err.message}") from err
        except (TimeoutError, aiohttp.ClientError) as err:
            raise RuntimeError(f"LiveKit at {self.url} unreachable: {err!r}") from err
        if not egress_id:
            raise ApplicationError("LiveKit answered the start without an egress id", type="EgressRejected",
                                   non_retryable=True)  # fmt: skip
        activity.logger.info("LiveKit egress %s records %s", egress_id, request.recording_id)
        await self.catalog.set_egress_id(request.recording_id, egress_id)

    @activity.defn(name="stop_egress")
    async def stop_egress(self, request: EgressStop) -> None:
        row = await self.catalog.get_recording(request.recording_id)
        if row is None or not row.egress_id:
            raise _not_found("no egress was started for it")
        try:
            async with self._client() as livekit:
                await livekit.egress.stop_egress(StopEgressRequest(egress_id=row.egress_id))
        except ServerError as err:
            if err.status == 404 or err.code == ServerErrorCode.NOT_FOUND:
                raise _not_found(f"{row.egress_id}: {err.message}") from err
            if err.code == ServerErrorCode.FAILED_PRECONDITION:
                activity.logger.info("LiveKit egress %s is already ending: %s", row.egress_id, err.message)
                return
            if err.status < 500:
                raise _rejected("stop", err) from err
            raise RuntimeError(f"LiveKit failed to stop the egress ({err.status} {err.code}): {err.message}") from err
        except (TimeoutError, aiohttp.ClientError) as err:
            raise RuntimeError(f"LiveKit at {self.url} unreachable: {err!r}") from err
