"""One settings object; the environment and the config file are read here and nowhere else.

Sources, highest priority first: constructor arguments, ``STOREFLOW_*`` environment variables,
the TOML config file (``STOREFLOW_CONFIG`` or ``./storeflow.toml``), defaults.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from storeflow.errors import ConfigError

DEFAULT_CONFIG_FILE = "storeflow.toml"


def _config_file() -> Path:
    return Path(os.environ.get("STOREFLOW_CONFIG", DEFAULT_CONFIG_FILE))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STOREFLOW_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///storeflow.db"
    timezone: str = "UTC"
    currency: str = "USD"
    locale: str = "en_US"
    default_phone_region: str = "US"

    host: str = "127.0.0.1"
    port: int = 8787

    webhook_secret: SecretStr | None = None
    webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    webhook_allow_private: bool = False
    webhook_allowed_hosts: list[str] = Field(default_factory=list)

    rate_limit_private_per_s: float = 200.0
    rate_limit_private_burst: int = 400
    rate_limit_public_per_s: float = 50.0  # per client address: a public key is shared by every visitor
    rate_limit_public_burst: int = 100
    rate_limit_max_clients: int = Field(default=100_000, gt=0)  # buckets kept in memory per API process
    # Proxies (addresses or CIDR networks) whose X-Forwarded-For names the client; none by default.
    trusted_proxies: list[str] = Field(default_factory=list)

    public_url: str = "http://127.0.0.1:8787"
    signing_secret: SecretStr | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_allow_plaintext_auth: bool = False  # allow a login over smtp_security = none (password in clear)
    smtp_timeout_s: float = 10.0
    smtp_pool_size: int = 4
    email_from: str = "Store <store@example.com>"
    email_marketing_requires_opt_in: bool = False
    team_emails: list[str] = Field(default_factory=list)
    slack_webhook_url: SecretStr | None = None

    sms_provider: Literal["none", "twilio", "http"] = "none"
    sms_from: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_base_url: str = "https://api.twilio.com"
    sms_http_url: str | None = None
    sms_http_token: SecretStr | None = None

    dispatch_batch_size: int = 100
    dispatch_concurrency: int = 4
    worker_batch_size: int = 200
    campaign_batch_size: int = Field(default=500, ge=1)  # campaign recipients queued per transaction
    worker_poll_interval_s: float = 0.25
    step_max_attempts: int = 5
    outbox_lease_s: float = Field(default=120.0, gt=0)  # each send also gets at least its timeout + 5 s
    low_stock_threshold: int = 5
    trigger_max_age_default_s: int = 86_400
    # A date-triggered occurrence (a birthday) missed by up to this long, e.g. while the worker was
    # down, still fires late; an older one is skipped (logged, and recorded on its fire row).
    date_trigger_grace_s: int = Field(default=86_400, ge=0)
    max_future_skew_s: float = Field(default=300.0, ge=0)  # how far ahead of now an occurred_at may be

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network; "
                                 "use e.g. 10.0.0.1 or 10.0.0.0/8") from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone; use e.g. Asia/Jakarta") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file()))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql", "postgres"))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and config file, mapping errors to ConfigError."""
    try:
        return Settings(**overrides)
    except Exception as exc:  # pydantic.ValidationError or a TOML error
        raise ConfigError(f"invalid configuration ({_config_file()} or STOREFLOW_* variables): {exc}") from exc
