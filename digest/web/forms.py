"""Reading a posted form once, checked (CSRF, line breaks), so route functions can stay synchronous."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Request

from digest.errors import InvalidInputError
from digest.vocabulary import CADENCES
from digest.web import security
from digest.web.zones import is_zone

# The largest id a row can have: PostgreSQL's ``integer``. SQLite's are wider, so one bound suits both, and
# a larger id in a path or form is a 4xx instead of a driver error (issue 14, finding 6).
MAX_ID = 2**31 - 1
# ASCII digits only: ``str.isdigit`` accepts "²" and "١", which ``int`` then refuses or reads, and ``int``
# refuses more than 4,300 digits; twelve digits are more than any field here needs.
WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id")]


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high``, or None."""
    text = text.strip()
    if not WHOLE_NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def email_problem(address: str) -> str:
    """What to tell a person whose address was refused: one sentence in our words, not the validator's
    ("the part after the @-sign contains invalid characters: '@'", issue 17), shown once beside the field."""
    if not address.strip():
        return "Enter your email address."
    return "That does not look like an email address: check it and try again (e.g. name@example.com)."


def check_schedule(cadence: str, hour: int | None, weekday: int | None, timezone: str) -> None:
    """``InvalidInputError`` in words a person acts on, for the first schedule field that will not do.

    A field the cadence does not use may be missing (None): forms.js hides it (issue 17)."""
    if cadence not in CADENCES:
        raise InvalidInputError("Choose how often: hourly, daily or weekly.")
    if hour is None and cadence in ("daily", "weekly"):
        raise InvalidInputError("Choose a time of day from the list.")
    if weekday is None and cadence == "weekly":
        raise InvalidInputError("Choose a day of the week from the list.")
    if not is_zone(timezone):
        raise InvalidInputError("Choose your timezone from the list.")


@dataclass(frozen=True, slots=True)
class Fields:
    """Submitted form fields; a name may repeat (checkboxes)."""

    values: dict[str, list[str]]

    def first(self, name: str, default: str = "") -> str:
        """The first value of ``name``, or ``default``."""
        return security.first(self.values, name, default)

    def all(self, name: str) -> list[str]:
        """Every value of ``name``."""
        return list(self.values.get(name, []))


def form_reader(secret: str, form: str) -> Callable[[Request], Awaitable[Fields]]:
    """A FastAPI dependency reading the form named ``form``.

    The CSRF token is bound to the path's ``token`` (the signed link the form acts on), if any.
    """

    async def read(request: Request) -> Fields:
        bind = str(request.path_params.get("token", ""))
        return Fields(await security.read_form(request, secret, form, bind))

    return read
