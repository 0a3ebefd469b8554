"""A minimal WHIP client (RFC 9725, non-trickle) on aiortc, for tests, benchmarks and the test-signal publisher.

`whip_publish` publishes tracks to a WHIP endpoint and returns a `WhipSession`; `publish_until` keeps publishing,
reconnecting by itself when the connection or the recorder goes away, until told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender


class WhipError(Exception):
    """The WHIP endpoint refused the offer (status and body as answered) or the connection failed."""

    def __init__(
        self, message: str, *, status: int | None = None, body: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after  # seconds, from the answer's Retry-After

    @property
    def retryable(self) -> bool:
        """A failure that may pass: no answer (network, ICE/DTLS), 5xx, 408 or 429. A refusal (401/403 token,
        404 room, 409 closed, 400/406/413/415 offer) stays a refusal however often it is asked again."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


class WhipSession:
    """A live WHIP publication: `location` is the absolute session URL; `close()` ends it."""

    def __init__(self, pc: RTCPeerConnection, location: str, token: str, answer: str, timeout: float) -> None:
        self.pc = pc
        self.location = location
        self.answer = answer
        self._token = token
        self._timeout = timeout
        self._closed = False
        self.delete_status: int | None = None

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    async def close(self) -> int | None:
        """DELETE the session (once), stop the tracks, close the peer connection; the DELETE status or None."""
        if self._closed:
            return self.delete_status
        self._closed = True
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.delete(self.location, headers={"Authorization": f"Bearer {self._token}"})
            self.delete_status = response.status_code
        except httpx.HTTPError:
            self.delete_status = None
        finally:
            for sender in self.pc.getSenders():
                if sender.track is not None:
                    sender.track.stop()
            await self.pc.close()
        return self.delete_status

    async def __aenter__(self) -> WhipSession:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def whip_publish(
    url: str,
    token: str,
    tracks: Sequence[MediaStreamTrack],
    *,
    timeout: float = 20.0,
    wait_connected: bool = True,
    video_codec: str | None = None,
    ice_servers: Sequence[str] = (),
) -> WhipSession:
    """Publish `tracks` (sendonly) to the WHIP endpoint `url` with bearer `token`.

    Gathers all candidates first (non-trickle), POSTs the offer, applies the 201 answer and, with
    `wait_connected`, waits until ICE+DTLS are connected. `video_codec` ("VP8", "H264") restricts the offer.
    Raises `WhipError` for any answer other than 201 or a connection that does not come up in `timeout`.
    """
    # An empty list, not None: aiortc's default would ask a public STUN server.
    pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in ice_servers]))
    try:
        for track in tracks:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            if video_codec and track.kind == "video":
                wanted = f"video/{video_codec}".lower()
                codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == wanted]
                if not codecs:
                    raise WhipError(f"video codec {video_codec!r} is not supported by aiortc")
                rtx = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() == "video/rtx"]
                transceiver.setCodecPreferences(codecs + rtx)
        await asyncio.wait_for(pc.setLocalDescription(await pc.createOffer()), timeout)
        offer = pc.localDescription.sdp
        headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                response = await client.post(url, content=offer.encode("utf-8"), headers=headers)
        except httpx.HTTPError as exc:
            raise WhipError(f"WHIP POST {url} failed: {exc}") from exc
        if response.status_code != 201:
            raise WhipError(
                f"WHIP POST {url} answered {response.status_code}: {response.text[:500]}",
                status=response.status_code,
                body=response.text,
                retry_after=retry_after_s(response.headers.get("retry-after")),
            )
        location = response.headers.get("location")
        if not location:
            raise WhipError(f"WHIP POST {url} answered 201 without a Location header", status=201, body=response.text)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        session = WhipSession(pc, urljoin(str(response.url), location), token, response.text, timeout)
    except BaseException:
        await pc.close()
        raise
    if wait_connected:
        try:
            await _wait_connected(pc, timeout)
        except BaseException:
            await session.close()
            raise
    return session


async def _wait_connected(pc: RTCPeerConnection, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise WhipError(f"WebRTC connection {pc.connectionState}")
        if time.monotonic() > deadline:
            raise WhipError(f"WebRTC connection not established within {timeout:g} s (state {pc.connectionState})")
        await asyncio.sleep(0.05)


BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 5.0)  # waits before the 1st, 2nd, ... retry in a row; the last one repeats
RETRY_AFTER_CAP_S = 10.0  # a server's Retry-After is honoured up to this
QUIET_S = 2.0  # no RTCP report from the receiver for this long: the connection counts as disconnected ...
DISCONNECTED_S = 3.0  # ... and after this long disconnected, it is given up and published again
WATCH_STEP_S = 0.25


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (delay-seconds or HTTP-date) in seconds from now; None without a usable one."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def backoff_s(retry: int, retry_after: float | None = None) -> float:
    """The wait before retry number `retry` (0-based) in a row: BACKOFF_S, or a later Retry-After (capped)."""
    wait = BACKOFF_S[min(retry, len(BACKOFF_S) - 1)]
    return max(wait, min(retry_after, RETRY_AFTER_CAP_S)) if retry_after is not None else wait


async def _last_report_s(pc: RTCPeerConnection) -> float | None:
    """When (time.monotonic) the remote side last sent an RTCP report about our media, None before any.

    aiortc has no `disconnected` state and notices a vanished peer only when consent checks fail (about 30 s);
    a receiver sends reports every second or so, so their silence tells sooner that nobody receives."""
    latest: datetime.datetime | None = None
    for sender in pc.getSenders():
        with contextlib.suppress(Exception):  # stats of a sender whose transport is already gone
            for stats in (await sender.getStats()).values():
                if stats.type == "remote-inbound-rtp" and (latest is None or stats.timestamp > latest):
                    latest = stats.timestamp
    if latest is None:
        return None
    return time.monotonic() - (datetime.datetime.now(datetime.UTC) - latest).total_seconds()


async def _until_lost(session: WhipSession, stop: asyncio.Event, on_state: Callable[[str, str], None]) -> str | None:
    """Waits until `stop` (None) or the session is lost: why, when its connection failed or closed (the recorder
    ended it, or shut down) or stayed disconnected for DISCONNECTED_S."""
    connected_s = time.monotonic()
    disconnected_s: float | None = None
    while not stop.is_set():
        state = session.connection_state
        if state in ("failed", "closed"):
            return f"the connection {state}"
        heard_s = await _last_report_s(session.pc) or connected_s
        now = time.monotonic()
        if now - max(heard_s, connected_s) <= QUIET_S:
            if disconnected_s is not None:
                on_state("publishing", "the connection is back")
            disconnected_s = None
        elif disconnected_s is None:
            disconnected_s = now
            on_state("disconnected", f"nothing heard from the receiver for {QUIET_S:g} s")
        elif now - disconnected_s > DISCONNECTED_S:
            return f"the connection stayed disconnected for {DISCONNECTED_S:g} s"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_STEP_S)
    return None


async def _unless_stopped(coro: Any, stop: asyncio.Event) -> Any:
    """`coro`'s result, or None as soon as `stop` is set (then `coro` is cancelled)."""
    work = asyncio.ensure_future(coro)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([work, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if work.done():
        return work.result()
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError, WhipError):
        await work
    return None


async def publish_until(
    url: str,
    token: str,
    make_tracks: Callable[[], Sequence[MediaStreamTrack]],
    stop: asyncio.Event,
    *,
    on_state: Callable[[str, str], None] | None = None,
    timeout: float = 20.0,
    video_codec: str | None = None,
    ice_servers: Sequence[str] = (),
) -> int:
    """Publishes to the WHIP endpoint `url` until `stop` is set, publishing again whenever the session is lost;
    returns how many times it connected.

    A session is lost when its connection fails or closes (the recorder ended it, or shut down) or hears nothing
    from the receiver for QUIET_S + DISCONNECTED_S (a recorder that died). Each attempt POSTs a new offer with
    new tracks from `make_tracks()` (aiortc tracks end with their peer connection) after a best-effort DELETE of
    the lost session; a failed attempt (no answer, 5xx, 408/429, no connection) is retried after BACKOFF_S (or
    the answer's Retry-After, capped), without limit. A refusal (401/403 token revoked or expired, 404 no room,
    409 room closed, or any other 4xx) raises `WhipError`. `on_state(state, detail)` hears "connecting",
    "publishing", "disconnected", "reconnecting" (detail: why) and "stopped"; it must not block.
    """

    def tell(state: str, detail: str = "") -> None:
        if on_state is not None:
            on_state(state, detail)

    connects = 0
    retry = 0  # failed attempts in a row
    tell("connecting")
    while not stop.is_set():
        try:
            attempt = whip_publish(url, token, make_tracks(), timeout=timeout, video_codec=video_codec,
                                   ice_servers=ice_servers)  # fmt: skip
            session: WhipSession | None = await _unless_stopped(attempt, stop)
        except WhipError as exc:
            if not exc.retryable:
                tell("stopped", str(exc))
                raise
            wait = backoff_s(retry, exc.retry_after)
            retry += 1
            tell("reconnecting", f"{exc}; again in {wait:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            continue
        if session is None:
            break
        connects += 1
        retry = 0
        tell("publishing", session.location)
        try:
            lost = await _until_lost(session, stop, tell)
        finally:
            await session.close()  # the DELETE may fail or find nothing (a restarted recorder): that is fine
        if lost is None:
            break
        wait = backoff_s(retry)
        retry += 1
        tell("reconnecting", f"{lost}; again in {wait:g} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    tell("stopped")
    return connects
