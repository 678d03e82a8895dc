"""Process settings, read from `CASEHUB_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What a process needs to find its broker, its store and its configuration."""

    model_config = SettingsConfigDict(env_prefix="CASEHUB_", extra="ignore")

    broker_url: str = Field(default="memory://", description="memory:// or amqp://user:pass@host:port/vhost")
    database_url: str = Field(default="sqlite:///casehub.db", description="sqlite:///FILE or postgresql+psycopg://...")
    config: Path = Field(default=Path("casehub.toml"), description="the tenant and partner configuration file")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch: int = Field(default=1000, ge=1)
    worker_threads: int = Field(default=8, ge=1)
    amqp_inbound_exchange: str = "casesystem.events"
    amqp_inbound_queue: str = "casehub.inbound"
    retry_max: int = Field(default=10, ge=0, description="retries of a transient failure before it is dead-lettered")
    retry_min_backoff_ms: int = Field(default=1_000, ge=1)
    retry_max_backoff_ms: int = Field(
        default=300_000, ge=1, le=900_000, description="kept well under RabbitMQ's 30-minute consumer timeout"
    )
    network_timeout: float = Field(default=10.0, gt=0, description="seconds, for every network call")
    console_secret: str | None = Field(
        default=None,
        min_length=32,
        description="signs the console's session cookies; the same in every serving process (unset: a "
        "random one per process, so sessions end when it stops)",
    )
    audit_key: str | None = Field(
        default=None,
        min_length=32,
        description="keys the audit log's index of persons (an HMAC of each personnummer, never the number); "
        "the same in every process and kept (unset: a fixed development key, for a laptop only)",
    )
    console_https: bool = Field(default=True, description="session cookies only over HTTPS (false for a laptop)")
