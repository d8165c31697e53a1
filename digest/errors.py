"""One error tree. Each error knows whether retrying could help (``permanent``)."""

from __future__ import annotations

from datetime import datetime


class DigestError(Exception):
    """Base of every error this package raises on purpose."""

    permanent: bool = True

    def __init__(self, message: str, *, permanent: bool | None = None) -> None:
        super().__init__(message)
        if permanent is not None:
            self.permanent = permanent


class ConfigError(DigestError):
    """A setting has a value we cannot use; the message names the variable."""


class SchemaMissingError(DigestError):
    """The database has no schema, or an older one than this code needs."""


class NotFoundError(DigestError):
    """A row named by the caller does not exist."""


class InvalidInputError(DigestError):
    """Input from a user or script was refused; the message says why."""


class LinkExpiredError(InvalidInputError):
    """A signed link past the deadline it carries (HTTP 410): pages say when it ran out and what to do."""

    def __init__(self, message: str, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class ConflictError(DigestError):
    """The request clashes with what is stored, e.g. a suppressed address (HTTP 409); the message says why."""


class ErasedError(DigestError):
    """The row's personal data was erased (GDPR art. 17): a clear status ("erased"), not a failure."""


class PrunedError(DigestError):
    """The row was deleted by retention (issue 19): a clear status ("pruned on DATE"), not a failure."""


class SignatureError(DigestError):
    """A webhook's signature or credentials did not verify (issue 19): nothing in it is believed (403)."""


class AlreadyResentError(InvalidInputError):
    """A second resend of one delivery that was not asked for explicitly: each surface says how to ask
    (the CLI's ``--force``, the admin's confirmation), so the message names neither (issue 17)."""


class FetchError(DigestError):
    """A feed could not be fetched. 4xx other than 408/429 are permanent for this attempt."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, permanent=permanent)
        self.status = status
        self.retry_after = retry_after


class ParseError(DigestError):
    """Fetched bytes are not a feed we can read."""


class MailError(DigestError):
    """A message could not be handed to the mail transport. 5xx replies are permanent."""

    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(message, permanent=permanent)
        self.code = code


class JournalError(DigestError):
    """The local sent journal cannot be read or written: no email may be sent without it (issue 18)."""
