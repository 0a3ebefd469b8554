"""Settings from `CALLREC_*` environment variables. Every setting has a default for the embedded mode."""

from __future__ import annotations

import hashlib
import hmac
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from callrec.domain.webhooks import WebhookEndpoint

DEV_API_KEY = "callrec-dev-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLREC_", extra="ignore")

    # Where the embedded mode keeps its state (catalog, objects, Temporal's SQLite file).
    data_dir: Path = Path(".callrec")

    api_key: str | None = Field(default=None, description="X-API-KEY for apps; required except for `callrec dev`")
    recording_secret: str | None = Field(default=None, description="HMAC secret shared with recording servers")
    token_secret: str | None = Field(
        default=None, min_length=32, description="signs access tokens; default derived from api_key"
    )
    user_token_ttl_s: float = Field(default=24 * 3600.0, gt=0)
    member_token_ttl_s: float = Field(default=6 * 3600.0, gt=0)
    public_url: str | None = Field(default=None, description="base of shareable URLs; default api_url")

    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; default SQLite under data_dir")

    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "callrec"
    s3_secure: bool = False
    s3_region: str | None = None

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    task_queue: str = "callrec"

    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_url: str = Field(default="http://127.0.0.1:8080", description="how recording servers reach the API")
    recorder_host: str = "127.0.0.1"
    recorder_port: int = 8090
    recorder_url: str = Field(default="http://127.0.0.1:8090", description="how the worker reaches the recorder")
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

    start_timeout_s: float = Field(default=20.0, gt=0, description="recorder must report started within this")
    upload_timeout_s: float = Field(default=300.0, gt=0, description="recorder must upload within this after stop")
    max_duration_s: float = Field(default=4 * 3600.0, gt=0, description="recordings stop as limit_reached after this")
    max_upload_bytes: int = Field(default=20 * 1024**3, gt=0)
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
    webhooks: list[WebhookEndpoint] = Field(
        default=[], description='JSON list of {"url", "secret", "events"?}: where recording events are POSTed'
    )
    recorder_silence_timeout_s: float = Field(
        default=60.0, gt=0, description="a recorder that sent progress and then goes quiet this long is given up"
    )

    @cached_property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'catalog.db').resolve()}"

    @cached_property
    def token_key(self) -> str:
        if self.token_secret:
            return self.token_secret
        derived = hmac.new(self.require_api_key().encode(), b"callrec access tokens", hashlib.sha256)
        return derived.hexdigest()

    @property
    def backend_url(self) -> str:
        """Where recording servers call back and upload (`Talk-Recording-Backend`)."""
        return (self.public_url or self.api_url).rstrip("/")

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

    def require_recording_secret(self) -> str:
        if not self.recording_secret:
            raise SystemExit("CALLREC_RECORDING_SECRET is not set")
        return self.recording_secret
