"""Settings: the only reader of the environment.

Every option is declared once with its default, type and validator (miniflux). ``load_settings`` turns a
bad value into one ``ConfigError`` line that names the variable and what it accepts. The values options
take apart live in ``values``; the generated secret key in ``secret``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from digest.config import values
from digest.config.secret import stored_secret
from digest.config.values import (
    ADDRESS_LOCAL,
    DNS_NAME,
    ENV_PREFIX,
    GENERATE_HINT,
    MIN_ITEM_RETENTION,
    SECRET_MIN,
    HostLimit,
    Mailbox,
    parse_host_limits,
    parse_mailbox,
    proxy_networks,
    secret_weakness,
)
from digest.errors import ConfigError, InvalidInputError
from digest.vocabulary import parse_duration

MAIL_SCHEMES = ("maildir", "smtp", "smtps", "smtp+starttls")
BROKER_SCHEMES = ("filesystem", "sqla+sqlite", "redis", "rediss", "memory")
DATABASE_SCHEMES = ("sqlite", "postgresql+psycopg")

__all__ = [
    "ENV_PREFIX",
    "HostLimit",
    "Mailbox",
    "Settings",
    "load_settings",
    "parse_host_limits",
    "parse_mailbox",
    "proxy_networks",
    "settings_env",
]


class Settings(BaseSettings):
    """Typed, validated configuration. Built once at start-up and passed in."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", populate_by_name=True, frozen=True
    )

    home: Path = Field(default=Path("var"), description="where embedded state lives")
    database_url: str = Field(default="", description="sqlite:///PATH or postgresql+psycopg://...")
    broker_url: str = Field(default="", description="filesystem://PATH, sqla+sqlite:///PATH or redis://...")
    mail_url: str = Field(default="", description="maildir://PATH, smtp://, smtps:// or smtp+starttls://")
    secret_key: str = Field(default="", description="signs links; generated into DIGEST_HOME if unset")
    base_url: str = Field(default="http://127.0.0.1:8000", description="public URL of the web app")
    from_address: str = Field(default="digest@localhost", alias="DIGEST_FROM", description="From: address")
    default_timezone: str = Field(default="UTC", description="IANA timezone for new subscribers")
    max_items: int = Field(default=20, ge=1, le=200, description="items per digest before '+N more'")
    send_empty: bool = Field(default=False, description="send 'nothing new' mails for empty windows")
    http_timeout: float = Field(default=30.0, gt=0, le=300, description="seconds for a whole feed response")
    max_feed_bytes: int = Field(default=10_000_000, gt=0, description="largest feed body accepted")
    crawl_threads: int = Field(default=8, ge=1, le=64, description="feeds fetched at once by `digest crawl`")
    per_host: int = Field(default=2, ge=1, le=16, description="requests at once to one host")
    api_rate_key: int = Field(
        default=600, ge=1, le=1_000_000, description="stream API requests a minute per API key"
    )
    api_rate_ip: int = Field(
        default=60, ge=1, le=1_000_000, description="stream API requests a minute per IP without a key"
    )
    block_private_addresses: bool | None = Field(
        default=None, description="refuse feeds on private addresses (default: on with PostgreSQL)"
    )
    dkim_key: str = Field(default="", description="PEM RSA private key file; set, it signs every message")
    dkim_selector: str = Field(default="digest", description="DKIM selector (TXT at SELECTOR._domainkey)")
    dkim_domain: str = Field(default="", description="DKIM d= domain (default: the domain of DIGEST_FROM)")
    send_rate: float = Field(
        default=0.0, ge=0, description="SMTP messages/s of each worker process (not a total); 0: no limit"
    )
    smtp_timeout: float = Field(default=30.0, gt=0, le=300, description="seconds to wait for each SMTP reply")
    smtp_ca_file: str = Field(
        default="", description="PEM CA certificates trusted for the SMTP server instead of the system's"
    )
    admin_token: str = Field(
        default="", description="opens /admin (login form or Authorization: Bearer); empty: no admin web"
    )
    max_attempts: int = Field(
        default=10, ge=1, le=100, description="send attempts before a temporarily refused email fails"
    )
    give_up_after: int = Field(
        default=72 * 3600,
        gt=0,
        description="seconds (or 30m, 72h, 3d) after which a temporarily refused email fails",
    )
    sent_write_retry: int = Field(
        default=60,
        gt=0,
        le=3600,
        description="seconds (or 90s, 5m) the write that marks an accepted email sent is retried through a "
        "database outage, never the send (issue 18)",
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated proxy addresses/networks whose X-Forwarded-For is believed; empty: none",
    )
    max_item_age: int = Field(
        default=7 * 86400,
        gt=0,
        description="seconds (or 90s, 15m, 12h, 7d) an item may be published before its digest window and "
        "still be mailed as new (issue 16)",
    )
    host_limits: str = Field(
        # arXiv's API terms: one request at a time, 3 s apart; its listing feeds get the same courtesy.
        default="export.arxiv.org=1/3s,rss.arxiv.org=1/1s",
        description="per-host feed request limits across processes: HOST=N[/SPACING],... (issue 16)",
    )
    skill_sources: bool = Field(
        default=True, description="on: a skill's first confirmed subscriber adds its query feeds (issue 16)"
    )
    item_retention: int = Field(
        default=400 * 86400,
        # Skill pages need 90 days and the 4 weeks before them (site.figures REACH_DAYS); trends a year.
        ge=MIN_ITEM_RETENTION,
        description="seconds (or 400d) after an item was first stored that it is deleted; its daily "
        "figures stay (issue 19)",
    )
    delivery_retention: int = Field(
        default=180 * 86400,
        ge=86400,
        description="seconds (or 180d) after its window ended that a digest delivery, its manifest and "
        "history are deleted: the replay horizon (issue 19)",
    )
    bounce_mailbox: str = Field(
        default="",
        description="where late bounces arrive: a maildir path or imaps://user:pass@host/INBOX; empty: none",
    )
    bounce_domain: str = Field(
        default="",
        description="domain of the VERP return path bounces+ID.SIG@DOMAIN (default: DIGEST_FROM's)",
    )
    mailgun_signing_key: str = Field(
        default="", description="Mailgun's webhook signing key; empty: /webhooks/mailgun answers 404"
    )
    postmark_webhook_auth: str = Field(
        default="", description="USER:PASSWORD Postmark sends as basic auth; empty: /webhooks/postmark 404"
    )
    sendgrid_public_key: str = Field(
        default="", description="SendGrid's event webhook verification key (base64); empty: 404"
    )
    sns_topics: str = Field(
        default="", description="comma-separated SNS topic ARNs whose SES notifications are read; empty: 404"
    )

    @field_validator(
        "max_item_age",
        "give_up_after",
        "sent_write_retry",
        "item_retention",
        "delivery_retention",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            try:
                return parse_duration(value)
            except InvalidInputError:
                raise ValueError("accepts seconds or a duration such as 90s, 15m, 12h, 7d") from None
        return value

    @field_validator("bounce_mailbox")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if value:
            parse_mailbox(value)
        return value

    @field_validator("postmark_webhook_auth")
    @classmethod
    def _user_password(cls, value: str) -> str:
        return values.postmark_auth(value)

    @field_validator("sendgrid_public_key")
    @classmethod
    def _ec_public_key(cls, value: str) -> str:
        return values.ec_public_key(value)

    @field_validator("sns_topics")
    @classmethod
    def _topic_arns(cls, value: str) -> str:
        return values.sns_topics(value)

    @field_validator("host_limits")
    @classmethod
    def _host_limits(cls, value: str) -> str:
        parse_host_limits(value)
        return value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("accepts an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("accepts an IANA timezone such as Europe/Berlin") from None
        return value

    @field_validator("dkim_key")
    @classmethod
    def _usable_dkim_key(cls, value: str) -> str:
        if not value:
            return value
        import dkim.crypto

        path = Path(value).expanduser().resolve()
        try:
            dkim.crypto.parse_pem_private_key(path.read_bytes())
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        except (dkim.crypto.UnparsableKeyError, ValueError):
            raise ValueError(f"{path} is not an unencrypted PEM RSA private key (PKCS#1 or PKCS#8)") from None
        return str(path)

    @field_validator("dkim_selector", "dkim_domain", "bounce_domain")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if value and not DNS_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a DNS name (letters, digits, hyphens, dots)")
        return value.lower()

    @field_validator("smtp_ca_file")
    @classmethod
    def _usable_ca_file(cls, value: str) -> str:
        if not value:
            return value
        import ssl

        path = Path(value).expanduser().resolve()
        try:
            ssl.create_default_context(cafile=str(path))
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror}") from None
        except ssl.SSLError:
            raise ValueError(f"{path} holds no PEM certificate") from None
        return str(path)

    @field_validator("secret_key", "admin_token")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        # Anyone who knows the secret signs manage links for every subscriber (ids are sequential), and
        # anyone who knows the admin token reads them all: a short, published or one-letter value is
        # refused rather than warned about (issue 14, findings 1 and 10). Empty: generated / admin off.
        if value and (weakness := secret_weakness(value)):
            raise ValueError(f"{weakness}; use at least {SECRET_MIN} random characters, {GENERATE_HINT}")
        return value

    @field_validator("from_address")
    @classmethod
    def _one_address(cls, value: str) -> str:
        # Every message carries it in From:, so a line break would inject headers and a non-address makes
        # every send fail; refused at start-up instead (issue 14, finding 9).
        local, at, domain = value.rpartition("@")
        if not (at and local and ADDRESS_LOCAL.fullmatch(local) and DNS_NAME.fullmatch(domain)):
            raise ValueError(f"{value!r} is not an email address such as digest@example.org")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        try:
            proxy_networks(value)
        except ValueError:
            raise ValueError(
                f"{value!r}: accepts comma-separated IP addresses or networks, e.g. 10.0.0.5,172.18.0.0/16"
            ) from None
        return value

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        # Defaults depend on `home`, so they are derived here rather than declared as constants.
        fills: dict[str, Any] = {}
        if not self.database_url:
            fills["database_url"] = f"sqlite:///{self.home / 'digest.sqlite3'}"
        if not self.broker_url:
            fills["broker_url"] = f"filesystem://{self.home / 'broker'}"
        if not self.mail_url:
            fills["mail_url"] = f"maildir://{self.home / 'outbox'}"
        if not self.dkim_domain:
            fills["dkim_domain"] = self.from_address.rpartition("@")[2].lower()
        if not self.bounce_domain:
            fills["bounce_domain"] = self.from_address.rpartition("@")[2].lower()
        if self.block_private_addresses is None:
            # On by default in the distributed mode; the embedded demo and tests crawl loopback.
            fills["block_private_addresses"] = not fills.get("database_url", self.database_url).startswith(
                "sqlite"
            )
        for name, value in fills.items():
            object.__setattr__(self, name, value)
        _check_scheme("DIGEST_DATABASE_URL", self.database_url, DATABASE_SCHEMES)
        _check_scheme("DIGEST_BROKER_URL", self.broker_url, BROKER_SCHEMES)
        _check_scheme("DIGEST_MAIL_URL", self.mail_url, MAIL_SCHEMES)
        return self

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded database."""
        return self.database_url.startswith("sqlite")


def _check_scheme(variable: str, url: str, schemes: tuple[str, ...]) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in schemes:
        raise ValueError(f"{variable}={url!r}: accepts URLs starting {', '.join(s + '://' for s in schemes)}")


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``.env``), validate, and ensure a secret key exists.

    Raises ``ConfigError`` with one line naming the bad variable.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    if settings.secret_key:
        return settings
    return settings.model_copy(update={"secret_key": stored_secret(settings.home)})


def _one_line(exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if message.startswith(ENV_PREFIX):
        return message
    field = str(error["loc"][0]) if error.get("loc") else "?"
    variable = "DIGEST_FROM" if field in ("from_address", "DIGEST_FROM") else ENV_PREFIX + field.upper()
    return f"{variable}: {message}"


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process (worker, beat, web) exactly these settings."""
    env = {}
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[field.alias or ENV_PREFIX + name.upper()] = text
    return env
