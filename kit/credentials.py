"""Secrets and AWS credentials as the kit holds them: a ``Secret`` is redacted in every repr, str, format and
copy, and ``reveal()`` is the only way to read it; ``Credentials`` keep the secret key and session token as
``Secret``s and show a masked access key id (``mask_access_key_id``). Pure: nothing here reads or logs.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from kit.errors import ConfigurationError


class Secret:
    """A secret string whose repr and str are redacted; ``reveal()`` is the only way to read it.

    Copies (``copy``, ``deepcopy``, hence ``dataclasses.asdict``) return the same redacted object, so printing
    a dict built from a dataclass holding one shows ``Secret('***')``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


def mask_access_key_id(access_key_id: str) -> str:
    """``AKIAIOSFODNN7EXAMPLE`` -> ``AKIA…MPLE``: enough to tell keys apart, not enough to use one."""
    if len(access_key_id) < 12:
        return "…" + access_key_id[-2:] if len(access_key_id) > 4 else "…"
    return f"{access_key_id[:4]}…{access_key_id[-4:]}"


@dataclass(frozen=True, init=False)
class Credentials:
    """Static AWS credentials. The secret key and session token are ``Secret``s and never printed."""

    access_key_id: str
    secret_access_key: Secret = field(repr=False)
    session_token: Secret | None = field(default=None, repr=False)

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: str | Secret,
        session_token: str | Secret | None = None,
    ) -> None:
        if not access_key_id or not secret_access_key:
            raise ConfigurationError(
                "Credentials need both an access key id and a secret access key; one of them is empty."
            )
        secret = secret_access_key if isinstance(secret_access_key, Secret) else Secret(secret_access_key)
        token = session_token if isinstance(session_token, Secret | None) else Secret(session_token)
        object.__setattr__(self, "access_key_id", access_key_id)
        object.__setattr__(self, "secret_access_key", secret)
        object.__setattr__(self, "session_token", token or None)

    @property
    def masked_access_key_id(self) -> str:
        return mask_access_key_id(self.access_key_id)

    def __repr__(self) -> str:
        token = "'***'" if self.session_token else "None"
        return (
            f"Credentials(access_key_id='{self.masked_access_key_id}', "
            f"secret_access_key='***', session_token={token})"
        )

    __str__ = __repr__
