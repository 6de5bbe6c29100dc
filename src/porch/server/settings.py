"""Every server knob, read from PORCH_* environment variables (docs/operations.md)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from porch.protocol.frames import MAX_CLIENT_FRAME_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORCH_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("porch-data")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Off by default: request lines are metadata (who talked to the server, when).
    access_log: bool = False
    # Keys verification-code hashes. Unset: a random secret is created in the database on
    # first use, which every node sharing the database then uses.
    secret: str | None = None
    max_request_bytes: int = 256 * 1024
    # Peers whose X-Forwarded-For is believed (addresses or CIDR networks, comma-separated).
    # Loopback by default: the single-machine setup puts nginx on the same host
    # (deploy/nginx/porch.conf); anything else must be listed, or every client shares the
    # proxy's rate-limit address. Empty: the socket peer is always the client.
    trusted_proxies: Annotated[list[str], NoDecode] = ["127.0.0.1", "::1"]

    # Before the app sees a request (docs/operations.md, Pre-authentication limits).
    # Request line and headers, which the HTTP parser buffers whole: larger is 431.
    max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=1 << 20)
    # A connection must complete its request head this soon after connecting (or after the
    # first byte of a later request): slow-header (slowloris) sockets are closed with 408.
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # The largest WebSocket message before `ready`: an auth frame is about 200 bytes.
    preauth_max_frame_bytes: int = Field(default=4096, ge=512, le=64 * 1024)
    # WebSocket connections between upgrade and `ready`, per process: per client address
    # (refused 429) and in total (refused 503).
    preauth_connections_per_address: int = Field(default=64, ge=1, le=1_000_000)
    preauth_connections_total: int = Field(default=1024, ge=1, le=1_000_000)

    # Storage. SQLite in data_dir unless database_url is postgresql://...
    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=2)
    # Cross-node bus and shared rate limits: redis://... (unset: in-process, one node only).
    redis_url: str | None = None
    # How often every connection re-reads its queue when Redis carries the wake-ups, so a
    # wake-up lost to a Redis outage costs at most this much latency.
    resync_seconds: float = 60.0
    workers: int = Field(default=1, ge=1)
    # NORMAL survives a process crash (SIGKILL) in WAL mode; FULL also survives power loss.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    # Registration
    sms_provider: Literal["console", "twilio"] = "console"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_verify_service_sid: str | None = None
    code_ttl_seconds: int = Field(default=600, ge=60, le=86_400)
    # Wrong codes allowed per registration session (each code request is a session).
    code_max_attempts: int = Field(default=5, ge=1, le=100)
    # Codes to one number: the wait after the n-th is interval * 2^(n-1), at most max; a run
    # of requests ends after quiet seconds without one (docs/security.md, "Verification codes").
    # (0 turns the spacing off: for tests and benchmarks only.)
    code_interval_seconds: int = Field(default=30, ge=0, le=3600)
    code_interval_max_seconds: int = Field(default=600, ge=0, le=86_400)
    code_quiet_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)

    # Rate limits: "count/seconds"
    limit_code_per_address: str = "20/3600"
    limit_directory_per_account: str = "200/3600"
    limit_register_per_address: str = "20/3600"
    # Claims take one-time keys for good: without a limit anyone could drain a device's.
    limit_key_claims_per_account: str = "600/3600"
    limit_auth_failures_per_address: str = "30/60"
    # Joins by invite token: a token is 256 random bits, so this bounds work, not guessing.
    limit_group_joins_per_account: str = "60/3600"
    # Linking (spec C): channels opened and links tried, per client address, before any auth.
    limit_provisioning_per_address: str = "30/3600"
    limit_link_per_address: str = "20/3600"
    # Per connection, counted in the connection itself (no shared state on the hot path).
    limit_sends_per_connection: str = "6000/60"

    # Devices per account, the first one included (linking refuses beyond it).
    max_devices: int = Field(default=5, ge=1, le=64)

    # Messaging
    retention_days: float = 30.0
    # At most MAX_CLIENT_FRAME_BYTES: every envelope then fits in a server frame (protocol.md).
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024, le=MAX_CLIENT_FRAME_BYTES)
    delivery_window: int = Field(default=256, ge=1, le=10_000)
    send_queue_frames: int = Field(default=1024, ge=16)
    # Container allocations between two young garbage collections in a serving process
    # (server/gc_tuning.py; CPython's default is 700). 0: Python's own thresholds.
    gc_threshold: int = Field(default=50_000, ge=0, le=10_000_000)
    one_time_keys_low: int = 10

    # Groups (docs/protocol.md, "Groups"): members per group, groups per account.
    max_group_members: int = Field(default=1000, ge=2, le=100_000)
    max_groups_per_account: int = Field(default=500, ge=1, le=100_000)
    sweep_interval_seconds: float = 300.0

    # Media (docs/operations.md, "Media"): attachment blobs, encrypted by the clients.
    media_backend: Literal["fs", "s3"] = "fs"
    media_dir: Path | None = None  # unset: <data dir>/media
    # The largest attachment, in plaintext bytes (the blob limit follows: spec §1 blob_size).
    media_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1, le=1 << 40)
    media_retention_days: float = Field(default=30.0, gt=0, le=3650)
    media_delete_when_downloaded: bool = False
    # Blob bytes of the slots one account may create per 24 hours.
    media_quota_bytes_per_day: int = Field(default=2 << 30, ge=1, le=1 << 50)
    # S3 refuses parts under 5 MiB (but the last): checked at start-up for that backend.
    media_part_bytes: int = Field(default=8 << 20, ge=64 * 1024, le=5 << 30)
    media_max_pending_uploads: int = Field(default=16, ge=1, le=10_000)
    # S3 presigned URLs live at most 7 days.
    media_upload_url_seconds: int = Field(default=3600, ge=10, le=604_800)
    media_download_url_seconds: int = Field(default=300, ge=10, le=604_800)
    # Filesystem backend part PUTs: a body with no byte for this long is abandoned (408), and
    # concurrent PUTs are capped per slot and per account (429 media_busy), so stalled
    # uploads cannot hold connections without bound.
    media_body_idle_seconds: float = Field(default=30.0, gt=0, le=3600)
    media_part_puts_per_upload: int = Field(default=4, ge=1, le=1000)
    media_part_puts_per_account: int = Field(default=8, ge=1, le=10_000)
    limit_media_uploads_per_account: str = "300/3600"
    # The S3 backend: the endpoint as clients see it (presigned URLs point there).
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    # Push (docs/operations.md, "Push"): content-free wake-ups for devices that are offline.
    # Unset key: one is generated and kept in the database, shared by every node.
    vapid_private_key: str | None = None
    # The contact push services see in the VAPID token (RFC 8292 §2.1): mailto: or https:.
    vapid_subject: str = Field(default="mailto:admin@localhost", pattern=r"^(mailto:|https://)")
    # At most one push per device per this many seconds (a burst of messages wakes it once).
    push_coalesce_seconds: int = Field(default=30, ge=1, le=3600)
    # How long a push service may hold a push for an unreachable device (the TTL header).
    push_ttl_seconds: int = Field(default=3600, ge=0, le=28 * 86_400)
    # Devices waiting for a push: beyond it, wake-ups are dropped (and counted).
    push_queue_size: int = Field(default=10_000, ge=16, le=1_000_000)
    push_concurrency: int = Field(default=8, ge=1, le=256)
    # CA certificates (PEM) trusted for push services instead of the system's (tests).
    push_ca_file: Path | None = None
    # Endpoints on loopback or private IP literals are refused unless this is set (SSRF).
    push_allow_private_endpoints: bool = False
    # The built browser app (web/dist) served at /; unset: web/dist of the checkout the server
    # runs from, if any (server/web.py). Without an index.html there, only the API is served.
    web_dir: Path | None = None
    auth_timeout_seconds: float = 10.0
    heartbeat_seconds: float = 20.0
    # The gateway's WebSocket layer, on the same port as HTTP either way: picows
    # (gateway/picows_stack.py; the default, chosen by measurement: docs/performance.md,
    # "WebSocket stack") or websockets' sans-I/O protocol under uvicorn (server/edge.py).
    # cli/serve.py falls back to websockets when picows does not import and was not named.
    ws_stack: Literal["websockets", "picows"] = "picows"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        # Normalised (10.0.0.1 -> 10.0.0.1/32); a typo fails at start-up, not silently.
        return [str(ipaddress.ip_network(item, strict=False)) for item in value]

    @field_validator("vapid_private_key")
    @classmethod
    def _check_vapid_key(cls, value: str | None) -> str | None:
        # At start-up, not at the first push: a wrong key would otherwise only show as every
        # browser's subscribe failing.
        if value is None:
            return None
        value = value.strip()
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                "not a VAPID private key: give the base64url raw 32-byte key that "
                "`npx web-push generate-vapid-keys` prints, or unset it to have one generated"
            )
        return value

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "porch.db"

    @property
    def media_path(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    @property
    def socket_max_bytes(self) -> int:
        """The WebSocket layer's cap after `ready`: frames above max_frame_bytes but below
        this still get a structured frame_too_large error and the connection lives on;
        above it, close 1009."""
        return max(4 * self.max_frame_bytes, 1 << 20)
