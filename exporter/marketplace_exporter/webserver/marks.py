"""What a route tells the web config's gate (gate.py), importable without bcrypt and the gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

H = TypeVar("H", bound=Callable[..., Any])

OWN_CREDENTIALS = "_web_own_bearer_credentials"
#: ``request[WEB_USER]``: the web config user this request authenticated as (to a write API that is
#: not its token: the request is still anonymous there)
WEB_USER = web.RequestKey("web_user", str)


def own_credentials(handler: H) -> H:
    """Mark a handler that checks its own ``Authorization: Bearer`` token: with web config users, a
    request carrying a Bearer token is left to the handler instead of needing a web user (one
    ``Authorization`` header cannot carry both)."""
    setattr(handler, OWN_CREDENTIALS, True)
    return handler


__all__ = ["OWN_CREDENTIALS", "WEB_USER", "own_credentials"]
