"""Reading a posted form once, checked (CSRF, line breaks), so route functions can stay synchronous."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from digest.web import security


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
