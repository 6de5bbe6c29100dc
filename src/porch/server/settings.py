"""Every server knob, read from PORCH_* environment variables (docs/operations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    code_ttl_seconds: int = 600
    code_max_attempts: int = 5

    # Rate limits: "count/seconds"
    limit_code_per_phone: str = "5/3600"
    limit_code_per_address: str = "20/3600"
    limit_verify_per_phone: str = "10/3600"
    limit_directory_per_account: str = "200/3600"
    limit_register_per_address: str = "20/3600"
    # Claims take one-time keys for good: without a limit anyone could drain a device's.
    limit_key_claims_per_account: str = "600/3600"
    limit_auth_failures_per_address: str = "30/60"
    # Per connection, counted in the connection itself (no shared state on the hot path).
    limit_sends_per_connection: str = "6000/60"

    # Messaging
    retention_days: float = 30.0
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024)
    delivery_window: int = Field(default=256, ge=1, le=10_000)
    send_queue_frames: int = Field(default=1024, ge=16)
    one_time_keys_low: int = 10
    sweep_interval_seconds: float = 300.0
    auth_timeout_seconds: float = 10.0
    heartbeat_seconds: float = 20.0

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "porch.db"
