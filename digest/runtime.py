"""The side effects of one process, built from settings and handed to the orchestrators.

Tasks, commands and the web app each hold one ``Runtime``; nothing below them reads settings or opens
connections on its own.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings, parse_host_limits
from digest.db import make_engine, make_sessions, require_schema
from digest.deliver.compose import Composer
from digest.deliver.journal import close_journal
from digest.deliver.mail import Mailer, mailer_for, signer_for
from digest.deliver.outbox import DeliveryConfig
from digest.deliver.selection import WindowCache
from digest.deliver.signup import SignupConfig, Signups
from digest.ingest.crawl import MatcherCache
from digest.ingest.fetch import FetchConfig, Fetcher, user_agent
from digest.ingest.politeness import gate_for
from digest.ops.ratelimit import limiter_for

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
    matchers: MatcherCache = field(default_factory=MatcherCache)
    rng: random.Random = field(default_factory=random.Random)
    # Test each pooled connection before use. Workers turn it off: their tasks retry on a dropped
    # connection anyway, and the test is a round trip and a transaction more per checkout (FIELD-NOTES).
    pre_ping: bool = True

    @_once
    def engine(self) -> Engine:
        """The database engine."""
        return make_engine(self.settings.database_url, pre_ping=self.pre_ping)

    @_once
    def sessions(self) -> sessionmaker[Session]:
        """The session factory."""
        return make_sessions(self.engine)

    @_once
    def mailer(self) -> Mailer:
        """The mail transport of this process (its SMTP connection is reused), DKIM-signing and paced."""
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
        return Composer()

    @_once
    def windows(self) -> WindowCache:
        """The rows of recent digest windows, shared by the digests of one slot sent by this process."""
        return WindowCache()

    @_once
    def signups(self) -> Signups:
        """Signup requests and confirmations, limited in Redis when it is the broker, else in the database."""
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
        )

    @property
    def fetch_config(self) -> FetchConfig:
        """Limits and manners of every feed request."""
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
        config = self.fetch_config
        return Fetcher(
            config, gate_for(self.settings.broker_url, self.sessions) if config.host_limits else None
        )

    def require_schema(self) -> None:
        """Raise ``SchemaMissingError`` unless migrations are applied."""
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
        close_journal(self.settings.home / "journal")
