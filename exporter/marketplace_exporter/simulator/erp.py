"""The demo's stand-in for a seller's ERP: it holds the production tokens of the platforms whose
refresh tokens rotate (or may) and writes each account's token file, as an ERP does for the
exporter to read (``token_file`` in ``credentials.py``).

The exporter never refreshes those tokens: whoever does must hand the current one over. Here the
ERP does, through the simulator's own rotation (in process: what the platform's refresh endpoint
does, without counting as a call the exporter made), an hour before a token dies, and rewrites the
file atomically each time, so the demo shows the token-file path working end to end: the token the
exporter sends, and ``marketplace_credential_expiry_timestamp_seconds`` for every such account.

A simulated platform takes part by implementing :class:`HoldsTokens`. The files are JSON:
``{"access_token", "expires_at", "refresh_expires_at"}`` (ISO-8601 UTC; no refresh token: the ERP
keeps that to itself), one per account, ``<marketplace>-<alias>.json``, mode 0600.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

#: refresh a held token this long before it expires (a real ERP's margin; the simulator's
#: shortest lifetime, Mercado Libre's 6 h, leaves 5 h of use)
REFRESH_AHEAD_S = 3600.0


@dataclass(frozen=True)
class Grant:
    """What a token grant gave the ERP for one account."""

    alias: str
    access_token: str
    refresh_token: str
    #: None: the platform gave no expiry (the ERP refreshes once to learn one)
    expires_at: float | None
    refresh_expires_at: float | None = None


@runtime_checkable
class HoldsTokens(Protocol):
    """A simulated platform whose production tokens an ERP holds (rotating refresh tokens)."""

    @property
    def name(self) -> str: ...

    def held_aliases(self) -> tuple[str, ...]:
        """The accounts whose tokens production holds."""
        ...

    def identity_grant(self, alias: str) -> Grant:
        """The grant production starts with: the identity's token, and its expiry if the
        simulator gives it one."""
        ...

    def refresh_grant(self, alias: str, refresh_token: str) -> Grant | None:
        """What the platform's refresh endpoint does for ``refresh_token`` (rotating it); None
        when the platform refuses it (unknown, used, expired)."""
        ...


class DemoErp:
    """Holds the grants of every :class:`HoldsTokens` platform and keeps their token files current."""

    def __init__(self, platforms: Iterable[object], directory: Path, clock: Callable[[], float]) -> None:
        self._platforms = [p for p in platforms if isinstance(p, HoldsTokens)]
        self.directory = directory
        self._clock = clock
        self._grants: dict[tuple[str, str], Grant] = {}

    def start(self) -> None:
        """Take over each account's identity grant (refreshing those without a known expiry) and
        write every token file. Synchronous: the files exist before any config refers to them."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for platform in self._platforms:
            for alias in platform.held_aliases():
                grant = platform.identity_grant(alias)
                if grant.expires_at is None:
                    grant = platform.refresh_grant(alias, grant.refresh_token) or grant
                self._keep(platform.name, grant)

    def tick(self) -> int:
        """Refresh every grant within :data:`REFRESH_AHEAD_S` of its expiry; the number refreshed."""
        now, refreshed = self._clock(), 0
        by_name = {platform.name: platform for platform in self._platforms}
        for (marketplace, _), grant in list(self._grants.items()):
            if grant.expires_at is None or grant.expires_at - now > REFRESH_AHEAD_S:
                continue
            fresh = by_name[marketplace].refresh_grant(grant.alias, grant.refresh_token)
            if fresh is not None:
                self._keep(marketplace, fresh)
                refreshed += 1
        return refreshed

    def grant(self, marketplace: str, alias: str) -> Grant | None:
        return self._grants.get((marketplace, alias))

    def token_file(self, marketplace: str, alias: str) -> Path:
        return self.directory / f"{marketplace}-{alias}.json"

    def use_token_files(self, config_text: str) -> str:
        """The demo config with each held account's ``access_token: {value: <identity token>}``
        replaced by ``token_file: <its file>``: the exporter then reads what this ERP writes."""
        for platform in self._platforms:
            for alias in platform.held_aliases():
                identity = platform.identity_grant(alias).access_token
                config_text = re.sub(rf"access_token: \{{value: {re.escape(identity)}\}}",
                                     f"token_file: {self.token_file(platform.name, alias)}", config_text)
        return config_text

    def _keep(self, marketplace: str, grant: Grant) -> None:
        self._grants[(marketplace, grant.alias)] = grant
        document = {"access_token": grant.access_token, "expires_at": _iso(grant.expires_at),
                    "refresh_expires_at": _iso(grant.refresh_expires_at)}
        path = self.token_file(marketplace, grant.alias)
        partial = path.with_suffix(".json.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in document.items() if v is not None}, handle)
        os.replace(partial, path)  # a reader sees the old file or the new one, never half of one


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
