"""Settings from ``TESSERA_*`` environment variables and an optional TOML file.

Environment variables win over the file (``TESSERA_CONFIG`` names it), the file over defaults.

>>> settings = Settings(issuer="https://id.example", database_url="sqlite://")
>>> settings.issuer, settings.signing_alg
('https://id.example', 'ES256')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SigningAlg = Literal["ES256", "ES384", "RS256", "PS256", "EdDSA"]
SIGNING_ALGS: tuple[str, ...] = get_args(SigningAlg)
DAY = 86_400
_DEFAULT_HOST = "127.0.0.1"


class Settings(BaseSettings):
    """Every knob of the identity provider, validated once at start."""

    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///var/tessera.db"
    redis_url: str | None = None
    redis_prefix: str = "tessera:revocation:"
    # Where tokens say they come from; by default where the server listens (host and port).
    issuer: str = "http://127.0.0.1:8000"
    host: str = _DEFAULT_HOST
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Threads per worker that run database work; the connection pool holds as many (plus the
    # housekeeping's), so a request never waits for a connection another request holds.
    threads: int = Field(default=8, ge=1, le=256)
    access_log: bool = False
    # GET /metrics answers only with "Authorization: Bearer <this>"; without it, not at all.
    metrics_token: SecretStr | None = None
    # Seconds a client read on this node is trusted without reading it again (0: always read):
    # a client disabled or a secret rotated on another node is refused here within it.
    client_cache_ttl: float = Field(default=1.0, ge=0, le=300)
    master_key: SecretStr | None = None
    master_key_file: Path = Path("var/master.key")

    access_token_ttl: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl: int = Field(default=30 * DAY, ge=300)
    refresh_idle_ttl: int = Field(default=7 * DAY, ge=300)
    refresh_reuse_grace: int = Field(default=0, ge=0, le=60)
    # Seconds an authorization code may be redeemed in: one redirect and one back-channel call
    # (RFC 9700 §4.1.1 wants it short; 60 is the most Tessera allows).
    authorization_code_ttl: int = Field(default=60, ge=1, le=60)
    # An ID token is read once, at sign-in; retired keys stay published an hour, so no longer.
    id_token_ttl: int = Field(default=3600, ge=60, le=3600)
    # A browser session at the provider (single sign-on) ends after this long without use, and
    # this long after the sign-in whatever the use.
    session_idle_ttl: int = Field(default=8 * 3600, ge=60, le=30 * DAY)
    session_ttl: int = Field(default=7 * DAY, ge=60, le=365 * DAY)
    # Each back-channel logout POST to a client waits this long (three attempts at most).
    backchannel_logout_timeout: float = Field(default=5.0, gt=0, le=30)

    signing_alg: SigningAlg = "ES256"
    key_rotation_period: int = Field(default=30 * DAY, ge=3600)
    key_prepublish: int = Field(default=3600, ge=0)
    jwks_max_age: int = Field(default=300, ge=0, le=86_400)

    purge_interval: int = Field(default=3600, ge=10)
    # Days an audit row is kept (0: forever); the purge that deletes older rows is audited.
    audit_retention_days: int = Field(default=365, ge=0, le=36_500)
    # When set, the rows a purge deletes are first written there, one JSON Lines file a purge
    # (readable by the owner only); if that file cannot be written, nothing is deleted.
    audit_export_dir: Path | None = None
    cookie_secure: bool = True
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # A request's header fields, names and values added up, and how many (431 past either).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_header_count: int = Field(default=100, ge=10, le=1000)
    bootstrap: bool = True

    # Passwords: argon2id at OWASP's parameters (19 MiB, 2 iterations, 1 lane); a change makes
    # every stored hash re-hash at its user's next successful login.
    argon2_memory_kib: int = Field(default=19_456, ge=8, le=4 * 1024 * 1024)
    argon2_time_cost: int = Field(default=2, ge=1, le=64)
    argon2_parallelism: int = Field(default=1, ge=1, le=64)
    # NIST SP 800-63B: at least 8 characters; 12 by default.
    password_min_length: int = Field(default=12, ge=8, le=128)

    # Brute-force defence (services/lockout.py). An account (tenant + username, whether the user
    # exists or not) has `lockout_free_attempts` failures free; then each attempt must wait
    # 2^(failures - free) s after the last failure, at most `lockout_max_delay`;
    # `lockout_threshold` failures within `lockout_window` s of the first lock it for
    # `lockout_duration` s. A client address with `lockout_ip_threshold` failures within the
    # window is refused for `lockout_duration`. The lower bounds keep a typo from locking
    # anyone; the upper ones keep a lock from outliving a day (an admin lock has no end).
    lockout_free_attempts: int = Field(default=3, ge=0, le=100)
    lockout_max_delay: int = Field(default=60, ge=1, le=3600)
    lockout_threshold: int = Field(default=10, ge=3, le=1000)
    lockout_window: int = Field(default=900, ge=10, le=86_400)
    lockout_duration: int = Field(default=900, ge=1, le=86_400)
    lockout_ip_threshold: int = Field(default=100, ge=10, le=1_000_000)
    # Failure counters: in Redis under this prefix when redis_url is set, else in the database
    # (either way every node counts together).
    throttle_prefix: str = Field(default="tessera:throttle:", min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _issuer_follows_the_listener(cls, data: Any) -> Any:
        """Without an explicit issuer, the issuer is where this server listens: a port from
        ``TESSERA_PORT``, the TOML file or ``--port`` reaches every token and discovery."""
        if isinstance(data, dict) and data.get("issuer") is None:
            host = str(data.get("host") or _DEFAULT_HOST)
            port = data.get("port")
            data = {**data, "issuer": _listen_url(host, port if port is not None else 8000)}
        return data

    @field_validator("issuer")
    @classmethod
    def _issuer_has_no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("issuer must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _argon2_memory_covers_its_lanes(self) -> Settings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 KiB per lane")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TESSERA_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def listen_url(self) -> str:
        """Where this server listens, as a client on this machine reaches it.

        >>> Settings(host="0.0.0.0", port=9000, issuer="https://id.example").listen_url
        'http://127.0.0.1:9000'
        """
        return _listen_url(self.host, self.port)

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is an embedded SQLite file (or memory)."""
        return self.database_url.startswith("sqlite")


def _listen_url(host: str, port: object) -> str:
    # A wildcard address is reached on the loopback address of its family.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
