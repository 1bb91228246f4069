"""Hub settings, read from ``FEDPARK_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "fedpark"


class Settings(BaseSettings):
    """Everything the hub needs; see the configuration table in the README."""

    model_config = SettingsConfigDict(env_prefix="FEDPARK_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=1, le=65535)
    public_url: str | None = None
    """The URL clients use to reach the hub, when it differs from http://host:port."""

    tls_certfile: Path | None = None
    """PEM certificate (with its chain) to serve HTTPS; plain HTTP when unset."""
    tls_keyfile: Path | None = None
    """PEM private key of ``tls_certfile``."""

    database_url: str | None = None
    """SQLAlchemy URL of the catalog; a SQLite file in the data dir when unset."""

    s3_endpoint: str | None = None
    """``host:port`` of the S3 server; unset starts the embedded SeaweedFS server."""
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket_prefix: str = Field(default="fedpark", pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")

    token_ttl_days: int = Field(default=30, ge=1)
    token_max_ttl_days: int = Field(default=365, ge=1)
    auth_failures_per_minute: int = Field(default=30, ge=0)
    """Failed authentications one client address may make per minute before 429 (0: off)."""
    requests_per_token_per_minute: int = Field(default=1200, ge=0)
    """Requests one API token may make per minute before 429 (0: off)."""
    console_session_hours: int = Field(default=12, ge=1, le=24 * 30)
    """How long a console sign-in lasts (never longer than the token it signed in with)."""
    audit_key: SecretStr | None = None
    """HMAC key of the audit chain; a generated key in the data dir when unset."""

    signing_key_file: Path | None = None
    """Ed25519 private key (PEM) that signs approvals; generated in the data dir when unset."""
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Larger request bodies are refused with 413."""

    superlink: str | None = None
    """``host:port`` of the Flower SuperLink's Control API the hub drives (experiments)."""
    fleet_address: str | None = None
    """``host:port`` factories' SuperNodes connect to; the SuperLink's address when unset."""
    flower_ca_file: Path | None = None
    """The park's CA (``fedpark pki init``): the SuperLink and the Fleet gate serve TLS
    certificates it signed; the hub trusts it for the Control API and hands it to factories."""
    supernode_auth: bool = False
    """The SuperLink runs with ``--enable-supernode-auth``: factories register their node keys
    through the hub when they join, and unregistered nodes are refused."""
    run_restarts: int = Field(default=3, ge=0, le=100)
    """How often one experiment is resumed from its last checkpoint after its Flower run is
    lost (a SuperLink restart) before the loss counts as its failure (0: never resumed)."""
    max_artifact_bytes: int = Field(default=2 * 1024**3, ge=1024)
    """Largest checkpoint or model a run may upload."""

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """A second port, on 127.0.0.1 only, serving ``/metrics`` without a token (for a
    Prometheus on the hub's machine); unset: only ``/metrics`` with a park admin's token."""

    log_level: str = "info"
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object a log line, with the request id (for a log collector)."""

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both FEDPARK_TLS_CERTFILE and FEDPARK_TLS_KEYFILE, or neither")
        return self

    @property
    def catalog_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'catalog.db'}"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.data_dir / "hub-signing-key.pem"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_certfile else "http"
        return self.public_url or f"{scheme}://{self.host}:{self.port}"

    def buckets(self) -> dict[str, str]:
        """Bucket name by purpose; created with versioning on at start."""
        return {
            purpose: f"{self.bucket_prefix}-{purpose}"
            for purpose in ("contracts", "models", "artifacts")
        }
