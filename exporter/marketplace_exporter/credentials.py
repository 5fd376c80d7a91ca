"""Credentials the exporter must not renew itself: the access token production already holds.

Shopee refresh tokens are single-use and every refresh returns a new one; Mercado Libre rotates
them too (observed), and Lazada, TikTok Shop and AliExpress are unconfirmed. A Wish refresh revokes
the access token in use, and Temu has no refresh at all. A monitor that called the refresh endpoint
of such a platform would silently break the seller's own token chain. So for these platforms the
exporter only *reads* the current access token, in one of two ways:

* ``access_token: ${ENV} | {file: PATH} | {value: ...}`` — a bare token (a file is re-read when it
  changes);
* ``token_file: PATH`` — a JSON or YAML file the seller's ERP rewrites whenever it refreshes, which
  also carries expiry dates so they become ``marketplace_credential_expiry_timestamp_seconds``
  series without any extra call. Schema (extra keys such as ``refresh_token`` are ignored and never
  read into memory beyond parsing)::

      access_token: "…"                         # required
      expires_at: 2026-11-26T18:00:00Z           # optional: ISO-8601 or Unix seconds
                                                 # (aliases: access_token_expires_at, and TikTok's
                                                 # absolute access_token_expire_in, Wish's
                                                 # absolute expiry_time)
      refresh_expires_at: 2026-12-26T10:00:00Z   # optional (aliases: refresh_token_expires_at,
                                                 # TikTok's absolute refresh_token_expire_in)
      authorization_expires_at: 2027-11-01       # optional: when the seller must re-authorize

Asking the exporter to refresh (a ``refresh_token`` key in such an account's credentials) is a
config error that explains why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import model_validator

from marketplace_exporter.adapters.base import StrictModel
from marketplace_exporter.catalogue import Credential
from marketplace_exporter.model import CredentialObservation
from marketplace_exporter.secrets import REDACTOR, Secret, SecretUnavailable

_REFRESH_KEYS = ("refresh_token", "refresh", "auto_refresh")
_ACCESS_ALIASES = ("expires_at", "access_token_expires_at", "access_token_expire_in",
                   "expiry_time")
_REFRESH_ALIASES = ("refresh_expires_at", "refresh_token_expires_at", "refresh_token_expire_in")


@dataclass(frozen=True)
class HeldToken:
    """The token to send now, and whatever expiry dates are known for it."""

    access_token: str
    expiries: tuple[CredentialObservation, ...]


class TokenFileCache:
    """Parsed token files keyed by path, re-read when the file's mtime or size changes."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[float, int], HeldToken]] = {}

    def read(self, path: str) -> HeldToken:
        from marketplace_exporter.config.yaml_loading import ConfigError, read_text  # config imports us

        try:
            stat = Path(path).stat()
            key = (stat.st_mtime, stat.st_size)
            cached = self._cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            text = read_text(path, "token file")  # size-capped, like every file we parse
        except OSError as exc:
            raise SecretUnavailable(f"cannot read token file {path}: {exc.strerror}") from None
        except ConfigError as exc:
            raise SecretUnavailable(str(exc)) from None
        held = parse_token_file(text, path)
        REDACTOR.hold(("token_file", path), held.access_token)  # the previous token goes to the grace set
        self._cache[path] = (key, held)
        return held


def parse_token_file(text: str, path: str) -> HeldToken:
    """JSON first (most ERPs write JSON), then YAML. Errors never quote the file's content."""
    try:
        data: Any = json.loads(text)
    except ValueError:
        from marketplace_exporter.config.yaml_loading import ConfigError, read_yaml  # config imports us

        try:
            data = read_yaml(path, text)[1]  # the bounded loader: no alias bomb, no bare ValueError
        except ConfigError:
            raise SecretUnavailable(f"token file {path} is neither JSON nor YAML") from None
    if not isinstance(data, dict):
        raise SecretUnavailable(f"token file {path}: expected a mapping with access_token")
    token = data.get("access_token")
    if not isinstance(token, str) or not token.strip():
        raise SecretUnavailable(f"token file {path}: access_token missing or not a string")
    REDACTOR.register(token.strip())
    expiries = []
    for keys, credential in ((_ACCESS_ALIASES, Credential.ACCESS_TOKEN),
                             (_REFRESH_ALIASES, Credential.REFRESH_TOKEN),
                             (("authorization_expires_at",), Credential.AUTHORIZATION)):
        for key in keys:
            if key in data and data[key] is not None:
                when = _timestamp(data[key])
                if when is None:
                    raise SecretUnavailable(f"token file {path}: {key} is not a date, ISO-8601 time "
                                            "or Unix seconds")
                expiries.append(CredentialObservation(credential, when))
                break
    return HeldToken(token.strip(), tuple(expiries))


def _timestamp(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if 0 < value < 1e11 else None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


#: one process-wide cache: several accounts may share a file, and it is re-read only on change
TOKEN_FILES = TokenFileCache()


class HeldTokenCredentials(StrictModel):
    """Base for credentials of platforms whose refresh rotates (or may rotate): exactly one of
    ``access_token`` or ``token_file``; never a refresh token."""

    #: why a refresh-token key is refused, in the config error (platforms with their own reason
    #: override it: Wish's refresh revokes the live access token, Temu has no refresh at all)
    why_no_refresh: ClassVar[str] = (
        "this platform's refresh tokens rotate (or may rotate), so the exporter never refreshes — a "
        "refresh by the monitor would invalidate the token your production system holds")

    access_token: Secret | None = None
    token_file: str | None = None
    #: optional, when production records it and no token file carries it
    access_token_expires_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _never_refresh(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _REFRESH_KEYS:
                if key in data:
                    raise ValueError(
                        f"'{key}' is not accepted: {cls.why_no_refresh}. Give it the current token instead: "
                        "access_token (${ENV}, {file: PATH}) or token_file (a JSON/YAML file your ERP "
                        "rewrites on every refresh; see docs/configuration.md)")
        return data

    @model_validator(mode="after")
    def _one_source(self) -> HeldTokenCredentials:
        if (self.access_token is None) == (self.token_file is None):
            raise ValueError("expected exactly one of access_token or token_file")
        return self

    def held_token(self) -> HeldToken:
        """The token to use now (raises SecretUnavailable). Reads files only when they changed."""
        if self.token_file is not None:
            held = TOKEN_FILES.read(self.token_file)
        else:
            assert self.access_token is not None
            held = HeldToken(self.access_token.reveal(), ())
        if self.access_token_expires_at is not None and not any(
                o.credential is Credential.ACCESS_TOKEN for o in held.expiries):
            expires = self.access_token_expires_at
            when = (expires if expires.tzinfo else expires.replace(tzinfo=UTC)).timestamp()
            observation = CredentialObservation(Credential.ACCESS_TOKEN, when)
            held = HeldToken(held.access_token, (*held.expiries, observation))
        return held
