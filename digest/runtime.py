"""The side effects of one process, built from settings and handed to the orchestrators.

Tasks, commands and the web app each hold one ``Runtime``; nothing below them reads settings or opens
connections on its own.

Each part imports its wing when first built, not at import: a command that reads one table starts without
the mailer, the fetcher and the task queue (issue 17, CLI start-up).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from digest.config import Settings
    from digest.deliver.compose import Composer
    from digest.deliver.mail import Mailer
    from digest.deliver.outbox import DeliveryConfig
    from digest.deliver.selection import WindowCache
    from digest.deliver.signup import Signups
    from digest.ingest.crawl import MatcherCache
    from digest.ingest.fetch import FetchConfig, Fetcher
    from digest.ops.retention import Policy

T = TypeVar("T")


class _once(Generic[T]):
    """``cached_property`` that builds its value once even when threads ask at the same moment.

    (Python 3.12 dropped the lock ``cached_property`` had; a crawl worker runs tasks on threads.)
    """

    _lock = threading.RLock()

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.__doc__ = build.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        with self._lock:
            if self.name not in instance.__dict__:
                instance.__dict__[self.name] = self.build(instance)
            return cast(T, instance.__dict__[self.name])


@dataclass
class Runtime:
    """Connections and caches of one process, created on first use."""

    settings: Settings
    rng: random.Random = field(default_factory=random.Random)
    # Test each pooled connection before use. Workers turn it off: their tasks retry on a dropped
    # connection anyway, and the test is a round trip and a transaction more per checkout (FIELD-NOTES).
    pre_ping: bool = True

    @_once
    def engine(self) -> Engine:
        """The database engine."""
        from digest.db import make_engine

        return make_engine(self.settings.database_url, pre_ping=self.pre_ping)

    @_once
    def matchers(self) -> MatcherCache:
        """The compiled taxonomy matcher of this process."""
        from digest.ingest.crawl import MatcherCache

        return MatcherCache()

    @_once
    def sessions(self) -> sessionmaker[Session]:
        """The session factory."""
        from digest.db import make_sessions

        return make_sessions(self.engine)

    @_once
    def mailer(self) -> Mailer:
        """The mail transport of this process (its SMTP connection is reused), DKIM-signing and paced."""
        from digest.deliver.mail import mailer_for, signer_for

        s = self.settings
        return mailer_for(
            s.mail_url,
            signer=signer_for(s.dkim_key, selector=s.dkim_selector, domain=s.dkim_domain),
            ca_file=s.smtp_ca_file,
            timeout=s.smtp_timeout,
            send_rate=s.send_rate,
        )

    @_once
    def composer(self) -> Composer:
        """The email renderer."""
        from digest.deliver.compose import Composer

        return Composer()

    @_once
    def windows(self) -> WindowCache:
        """The rows of recent digest windows, shared by the digests of one slot sent by this process."""
        from digest.deliver.selection import WindowCache

        return WindowCache()

    @_once
    def signups(self) -> Signups:
        """Signup requests and confirmations, limited in Redis when it is the broker, else in the database."""
        from digest.deliver.signup import SignupConfig, Signups
        from digest.ops.ratelimit import limiter_for

        s = self.settings
        return Signups(
            self.sessions,
            limiter=limiter_for(s.broker_url, self.sessions),
            mailer=self.mailer,
            composer=self.composer,
            config=SignupConfig(s.from_address, s.base_url, s.secret_key),
        )

    @property
    def delivery(self) -> DeliveryConfig:
        """Settings of the deliver wing."""
        from digest.deliver.outbox import DeliveryConfig

        s = self.settings
        return DeliveryConfig(
            s.from_address,
            s.base_url,
            s.secret_key,
            s.max_items,
            s.send_empty,
            s.max_attempts,
            timedelta(seconds=s.give_up_after),
            timedelta(seconds=s.max_item_age),
            journal=s.home / "journal",
            sent_write_retry=timedelta(seconds=s.sent_write_retry),
            bounce_domain=s.bounce_domain,
        )

    @property
    def retention(self) -> Policy:
        """How long items and deliveries are kept (issue 19)."""
        from digest.ops.retention import Policy

        s = self.settings
        return Policy(timedelta(seconds=s.item_retention), timedelta(seconds=s.delivery_retention))

    @property
    def fetch_config(self) -> FetchConfig:
        """Limits and manners of every feed request."""
        from digest.config import parse_host_limits
        from digest.ingest.fetch import FetchConfig, user_agent

        s = self.settings
        return FetchConfig(
            connect_timeout=min(s.http_timeout, 10.0),
            total_timeout=s.http_timeout,
            max_bytes=s.max_feed_bytes,
            per_host=s.per_host,
            user_agent=user_agent(s.base_url),
            block_private=bool(s.block_private_addresses),
            host_limits=parse_host_limits(s.host_limits),
        )

    @_once
    def fetcher(self) -> Fetcher:
        """The feed fetcher of this process: one pooled client, built after any fork, on first use."""
        from digest.ingest.fetch import Fetcher
        from digest.ingest.politeness import gate_for

        config = self.fetch_config
        return Fetcher(
            config, gate_for(self.settings.broker_url, self.sessions) if config.host_limits else None
        )

    def require_schema(self) -> None:
        """Raise ``SchemaMissingError`` unless migrations are applied."""
        from digest.db import require_schema

        require_schema(self.engine)

    def close(self) -> None:
        """Close whatever was opened."""
        if "fetcher" in self.__dict__:
            self.fetcher.close()
        if "signups" in self.__dict__:
            self.signups.limiter.close()
        if "mailer" in self.__dict__:
            self.mailer.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
        from digest.deliver.journal import close_journal

        close_journal(self.settings.home / "journal")
