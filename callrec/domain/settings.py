"""Settings from `CALLREC_*` environment variables. Every setting has a default for the embedded mode."""

from __future__ import annotations

import hmac
import socket
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

from callrec.domain.cors import CorsOrigins
from callrec.domain.proxies import Network, TrustedProxies, networks
from callrec.domain.publish import IceServer
from callrec.domain.webhooks import WebhookEndpoint

DEV_API_KEY = "callrec-dev-key"
StunUrl = Annotated[str, StringConstraints(pattern=r"^stuns?:[^\s<>\x00-\x1f]+$")]
Lowered = BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value)  # INFO is info
HttpServer = Literal["granian", "hypercorn"]
MIN_SECRET_LENGTH = 32  # characters of CALLREC_API_KEY, bytes of CALLREC_TOKEN_SECRET


def recorder_address(host: str, port: int) -> str:
    """How other machines reach a recorder listening on host:port: by host name when it listens everywhere."""
    if host in ("", "0.0.0.0", "::"):
        return f"http://{socket.gethostname()}:{port}"
    return local_url(host, port)


def local_url(host: str, port: int) -> str:
    """The URL of a server listening on host:port, as seen from this machine (a wildcard address is loopback)."""
    reach = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{reach}]:{port}" if ":" in reach else f"http://{reach}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLREC_", extra="ignore")

    # Where the embedded mode keeps its state (catalog, objects, Temporal's SQLite file).
    data_dir: Path = Field(
        default=Path(".callrec"), description="local state: SQLite catalog, recordings without S3, kept secrets"
    )

    api_key: str | None = Field(default=None, description="X-API-KEY for apps; required except for `callrec dev`")
    recording_secret: str | None = Field(default=None, description="HMAC secret shared with recording servers")
    token_secret: str | None = Field(
        default=None,
        description="signs user and member tokens: its own random secret of at least 32 bytes, never the API key; "
        "required by `callrec api` (`callrec dev` generates one and keeps it in data_dir/token-secret)",
    )
    dev_mode: bool = Field(
        default=False,
        description="set by `callrec dev` for the processes it starts (allows its short dev API key); "
        "never set it in production",
    )
    log_format: Annotated[Literal["text", "json"], Lowered] = Field(
        default="text",
        description="`json`: a JSON object per log line (the container image's default); `text`: readable "
        "key=value lines, each starting with the process name",
    )
    log_level: Annotated[Literal["debug", "info", "warning", "error"], Lowered] = Field(
        default="info", description="the least severe log lines written"
    )
    user_token_ttl_s: float = Field(default=24 * 3600.0, gt=0, description="lifetime of a user access token")
    member_token_ttl_s: float = Field(default=6 * 3600.0, gt=0, description="lifetime of a room member token")
    public_url: str | None = Field(
        default=None,
        description="base of the absolute URLs the API answers; default the request's scheme and host (api_url for "
        "recording servers)",
    )
    trusted_proxies: TrustedProxies = Field(
        default=[],
        description="IPs or CIDR networks (comma-separated) of reverse proxies whose X-Forwarded-Proto and "
        "X-Forwarded-Host make the absolute URLs the API answers when public_url is unset; default: none trusted",
    )

    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; default SQLite under data_dir")

    s3_endpoint: str | None = Field(default=None, description="S3 host:port; unset: recordings are kept under data_dir")
    s3_access_key: str | None = Field(default=None, description="S3 access key")
    s3_secret_key: str | None = Field(default=None, description="S3 secret key")
    s3_bucket: str = Field(default="callrec", description="S3 bucket for recordings")
    s3_secure: bool = Field(default=False, description="talk to S3 over TLS")
    s3_region: str | None = Field(default=None, description="S3 region")

    media_offload: Annotated[Literal["none", "x-accel", "presigned"], Lowered] = Field(
        default="none",
        description="who sends a recording's bytes for GET .../media and .../download once callrec has authorized "
        "it: `none` callrec streams them; `x-accel` an nginx in front (X-Accel-Redirect to "
        "media_offload_prefix); `presigned` (S3 only) a redirect to a short-lived presigned S3 URL",
    )
    media_offload_prefix: str = Field(
        default="/_callrec_media/",
        pattern=r"^/[A-Za-z0-9_./-]*/$",
        description="the nginx `internal` location X-Accel-Redirect points to (media_offload=x-accel)",
    )
    media_offload_expiry_s: int = Field(
        default=300,
        gt=0,
        le=7 * 24 * 3600,
        description="lifetime of a presigned media URL (media_offload=presigned, or x-accel on S3, where nginx uses "
        "it at once)",
    )

    temporal_address: str = Field(default="127.0.0.1:7233", description="host:port of the Temporal frontend")
    temporal_namespace: str = Field(default="default", description="Temporal namespace")
    temporal_ui_port: int = Field(default=8233, description="port of the Temporal web UI `callrec dev` starts")
    temporal_ui_url: str = Field(
        default_factory=lambda data: local_url(data["temporal_address"].rpartition(":")[0].strip("[]"),
                                               data["temporal_ui_port"]),
        description="base URL of the Temporal web UI, for the workflow links `callrec ops show` prints; default "
        "http://<host of temporal_address>:<temporal_ui_port> (the UI `callrec dev` starts); Temporal Cloud: "
        "https://cloud.temporal.io",
    )  # fmt: skip
    task_queue: str = Field(default="callrec", description="Temporal task queue of the worker")
    temporal_tls: bool | None = Field(
        default=None,
        description="connect to Temporal over TLS; default: on when a TLS file, server name or "
        "temporal_api_key is set, off otherwise",
    )
    temporal_tls_cert: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS to Temporal (with temporal_tls_key)"
    )
    temporal_tls_key: Path | None = Field(
        default=None, description="PEM private key of temporal_tls_cert (mutual TLS to Temporal)"
    )
    temporal_tls_ca: Path | None = Field(
        default=None,
        description="PEM CA certificate(s) Temporal's server certificate is checked against; "
        "default the system's roots",
    )
    temporal_tls_server_name: str | None = Field(
        default=None,
        description="name Temporal's server certificate is checked against (and sent as SNI); "
        "default the host of temporal_address",
    )
    temporal_api_key: str | None = Field(
        default=None, description="API key for Temporal Cloud (sent as a bearer token; turns TLS on)"
    )

    api_host: str = Field(default="127.0.0.1", description="address the API listens on")
    api_port: int = Field(default=8080, description="port the API listens on")
    api_url: str = Field(
        default_factory=lambda data: local_url(data["api_host"], data["api_port"]),
        description="how recording servers reach the API; default http://<api_host>:<api_port>",
    )
    http_server: Annotated[HttpServer, Lowered] = Field(
        default="granian",
        description="HTTP server of the API and the recorder: granian (Rust; sends whole local files itself) or "
        "hypercorn (pure Python; refuses a request with both Content-Length and Transfer-Encoding)",
    )
    recorder_host: str = Field(default="127.0.0.1", description="address the built-in recorder listens on")
    recorder_port: int = Field(default=8090, description="port the built-in recorder listens on")
    recorder_url: str = Field(
        default_factory=lambda data: recorder_address(data["recorder_host"], data["recorder_port"]),
        description="how the API reaches this recorder (it registers it); default http://<recorder_host>:<port>, "
        "the machine's host name when it listens on every address",
    )
    recorder_id: str = Field(
        default_factory=lambda data: f"{socket.gethostname()}-{data['recorder_port']}",
        pattern=r"^[A-Za-z0-9_.-]{1,100}$",
        description="this recorder's name in the pool (its task queue is callrec-recorder-<id>); default "
        "<host name>-<recorder_port>",
    )
    recorder_capacity: float | None = Field(
        default=None,
        gt=0,
        description="this recorder's budget in 720p30 recordings; default its cores x the measured recordings per core",
    )
    segment_s: float = Field(
        default=10.0, gt=0, le=300, description="the recorder ships what it recorded to the object store this often"
    )
    egress: Literal["builtin", "talk", "livekit"] = Field(
        default="builtin",
        description="who records: the built-in recorder, an external Talk recording server, or LiveKit Egress",
    )
    livekit_url: str | None = Field(default=None, description="LiveKit server URL (egress=livekit)")
    livekit_api_key: str | None = Field(default=None, description="LiveKit API key (egress=livekit)")
    livekit_api_secret: str | None = Field(default=None, description="LiveKit API secret (egress=livekit)")
    talk_recording_server: str | None = Field(
        default=None, description="base URL of the external recording server when egress=talk"
    )

    recording_consent: int = Field(
        default=0,
        ge=0,
        le=2,
        description="Talk's recording consent: 0 off, 1 joining any call needs consent to be recorded, 2 moderators "
        "turn it on per room",
    )
    start_timeout_s: float = Field(default=20.0, gt=0, description="recorder must report started within this")
    upload_timeout_s: float = Field(default=300.0, gt=0, description="recorder must upload within this after stop")
    late_upload_window_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="after the upload timeout the recording is failed, but an upload within this long still "
        "completes it (a long call's slow upload); 0: none",
    )
    update_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="how long the API waits for a worker to take a start, stop, upload or share (a workflow "
        "update; a restarted worker takes its tasks back after about 10 s); beyond it 503 naming the recording",
    )
    max_duration_s: float = Field(default=4 * 3600.0, gt=0, description="recordings stop as limit_reached after this")
    store_timeout_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="how long the worker keeps trying to store an uploaded file while the object store is down; "
        "then the recording fails store_unavailable, keeping the upload for `callrec ops retry`",
    )
    max_upload_bytes: int = Field(default=20 * 1024**3, gt=0, description="largest recording upload accepted")
    share_offer_expiry_s: float = Field(
        default=7 * 24 * 3600.0, gt=0, description="the share-to-chat offer of a stored recording stays open this long"
    )
    reconcile_every_s: float = Field(
        default=300.0, gt=0, description="how often the reconcile schedule repairs the catalog and staging objects"
    )
    reconcile_min_age_s: float = Field(
        default=120.0, ge=0, description="reconcile leaves rows and staging objects younger than this alone"
    )
    bruteforce_max_failures: int = Field(
        default=10, gt=0, description="bad recording-server checksums from one address before it gets 429"
    )
    bruteforce_window_s: float = Field(default=300.0, gt=0, description="how long a bad checksum counts")
    recorder_nonce_ttl_s: float = Field(
        default=7 * 24 * 3600.0,
        gt=0,
        description="how long an accepted Talk-Recording-Random is remembered to refuse its replay (older replays "
        "are not detected: the protocol has no timestamp); keep it above max_duration_s + upload_timeout_s",
    )
    max_concurrent_uploads: int = Field(
        default=32, gt=0, description="recorder uploads (/store) at once; beyond it 503 with Retry-After"
    )
    upload_idle_timeout_s: float = Field(
        default=60.0, gt=0, description="an upload that sends no body bytes this long is refused (408)"
    )
    upload_body_timeout_s: float = Field(
        default=6 * 3600.0, gt=0, description="an upload whose body takes longer than this is refused (408)"
    )
    cors_origins: CorsOrigins = Field(
        default=[],
        description="browser origins allowed to call the API (CORS), comma-separated or a JSON list, e.g. "
        "https://app.example.com; `*` allows any origin; empty: no CORS headers at all",
    )
    webhooks: list[WebhookEndpoint] = Field(
        default=[], description='JSON list of {"url", "secret", "events"?}: where recording events are POSTed'
    )
    recorder_silence_timeout_s: float = Field(
        default=60.0, gt=0, description="a recorder that sent progress and then goes quiet this long is given up"
    )
    recorder_backends: list[str] = Field(
        default=[],
        description="JSON list of the back-end URLs the built-in recorder may call back and upload to; a start's "
        "Talk-Recording-Backend picks one, the first when it names none; default the public URL and the API URL",
    )
    publish_secret: str | None = Field(
        default=None,
        description="signs WHIP publish tokens: its own random secret of at least 32 bytes, shared by the API (which "
        "mints them) and the built-in recorder (which checks them); `callrec dev` generates one",
    )
    publish_token_ttl_s: float = Field(
        default=3600.0, gt=0, description="how long a publish token may start a WHIP session"
    )
    max_publishers_per_room: int = Field(
        default=16, gt=0, description="WHIP publishers in one room at once; one more is refused (409 `publishers`)"
    )
    whip_ice_servers: list[StunUrl | IceServer] = Field(
        default=[],
        description="JSON list of the ICE servers handed to WHIP clients as Link headers: STUN URLs, and TURN "
        'servers with credentials as objects, e.g. ["stun:stun.example.org", {"url": "turn:turn.example.org", '
        '"username": "u", "credential": "p"}]',
    )
    whip_connect_timeout_s: float = Field(
        default=15.0, gt=0, description="a WHIP session whose ICE/DTLS has not connected by then is dropped"
    )
    whip_media_timeout_s: float = Field(
        default=10.0, gt=0, description="a WHIP publisher that sends no media this long leaves the call"
    )
    metrics_token: str | None = Field(
        default=None,
        description="bearer token GET /metrics of the API, the recorder and the worker asks for (Prometheus sends "
        "it as `Authorization: Bearer <token>`); unset: /metrics answers 404 unless metrics_public "
        "(`callrec dev` generates one and keeps it in data_dir/metrics-token)",
    )
    metrics_public: bool = Field(
        default=False,
        description="serve /metrics to anyone, without metrics_token: only where the ports are reachable from a "
        "private network alone",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="address the worker's /metrics and its Temporal SDK metrics listen on"
    )
    worker_metrics_port: int = Field(
        default=8091, ge=0, le=65535, description="port of the worker's GET /metrics; 0: none"
    )
    temporal_metrics_port: int = Field(
        default=8092,
        ge=0,
        le=65535,
        description="port of the worker's Temporal SDK metrics (Prometheus text, `temporal_*` series, no token: "
        "keep it off the internet) on worker_metrics_host; 0: none",
    )
    recorder_replay_max_entries: int = Field(
        default=100_000,
        gt=0,
        description="how many Talk-Recording-Randoms the built-in recorder remembers (for recorder_nonce_ttl_s) "
        "to refuse replayed requests; beyond it the oldest are forgotten",
    )

    @cached_property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @property
    def token_key(self) -> str:
        """The token-signing secret; `callrec api` checked it at start-up (`require_api_secrets`)."""
        if not self.token_secret:
            raise SystemExit("CALLREC_TOKEN_SECRET is not set (a random secret of at least 32 bytes)")
        return self.token_secret

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return networks(tuple(self.trusted_proxies))

    @property
    def backend_url(self) -> str:
        """Where recording servers call back and upload (`Talk-Recording-Backend`)."""
        return (self.public_url or self.api_url).rstrip("/")

    @property
    def recorder_backend_urls(self) -> list[str]:
        """The built-in recorder's allow-list of back ends (the first is its default)."""
        return self.recorder_backends or list(dict.fromkeys([self.backend_url, self.api_url.rstrip("/")]))

    @property
    def egress_url(self) -> str:
        """The recording server the worker drives."""
        if self.egress == "talk":
            if not self.talk_recording_server:
                raise SystemExit("CALLREC_TALK_RECORDING_SERVER is not set (CALLREC_EGRESS=talk needs it)")
            return self.talk_recording_server.rstrip("/")
        return self.recorder_url.rstrip("/")

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    def require_api_key(self) -> str:
        if not self.api_key:
            raise SystemExit("CALLREC_API_KEY is not set (only `callrec dev` falls back to a dev key)")
        return self.api_key

    def require_api_secrets(self) -> None:
        """What `callrec api` checks before serving: stops with one line naming the setting to fix."""
        key, token = self.api_key or "", self.token_secret or ""
        if not key:
            raise SystemExit("CALLREC_API_KEY is not set (only `callrec dev` falls back to a dev key)")
        if len(key) < MIN_SECRET_LENGTH and not self.dev_mode:
            raise SystemExit(f"CALLREC_API_KEY is too short: {len(key)} characters, at least {MIN_SECRET_LENGTH} "
                             "needed (make one with: openssl rand -hex 32)")  # fmt: skip
        if not token:
            raise SystemExit("CALLREC_TOKEN_SECRET is not set: it signs access tokens; set a random secret of at "
                             f"least {MIN_SECRET_LENGTH} bytes (openssl rand -hex 32)")  # fmt: skip
        if len(token.encode()) < MIN_SECRET_LENGTH:
            raise SystemExit(f"CALLREC_TOKEN_SECRET is too short: {len(token.encode())} bytes, at least "
                             f"{MIN_SECRET_LENGTH} needed (make one with: openssl rand -hex 32)")  # fmt: skip
        if hmac.compare_digest(token.encode(), key.encode()):
            raise SystemExit("CALLREC_TOKEN_SECRET must not be the API key: give it its own random value")

    def require_publish_secret(self) -> str:
        """The publish-token secret; SystemExit naming the setting when it is missing or weak."""
        secret = self.publish_secret or ""
        if len(secret.encode()) < MIN_SECRET_LENGTH:
            state = "is not set" if not secret else f"is too short ({len(secret.encode())} bytes)"
            raise SystemExit(f"CALLREC_PUBLISH_SECRET {state}: it signs WHIP publish tokens; set a random secret of "
                             f"at least {MIN_SECRET_LENGTH} bytes (openssl rand -hex 32)")  # fmt: skip
        for name in ("api_key", "token_secret", "recording_secret"):
            other = getattr(self, name) or ""
            if hmac.compare_digest(secret.encode(), other.encode()):
                raise SystemExit(f"CALLREC_PUBLISH_SECRET must not be CALLREC_{name.upper()}: give it its own random "
                                 "value")  # fmt: skip
        return secret

    def require_media_offload(self) -> None:
        """What `callrec api` checks of media_offload: presigned URLs need an S3 store."""
        if self.media_offload == "presigned" and not self.s3_endpoint:
            raise SystemExit("CALLREC_MEDIA_OFFLOAD=presigned needs an S3 store (CALLREC_S3_ENDPOINT); the local store "
                             "can be offloaded with x-accel")  # fmt: skip

    def require_recording_secret(self) -> str:
        if not self.recording_secret:
            raise SystemExit("CALLREC_RECORDING_SECRET is not set")
        return self.recording_secret
