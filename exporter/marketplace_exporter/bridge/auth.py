"""Who may post to the bridge: the webhook and ``POST /-/reload`` check the same credentials.

Alertmanager sends either a Bearer token (``http_config.authorization.credentials_file``) or basic
auth (``http_config.basic_auth``); both are compared in constant time against ``auth`` in bridge.yml.
``auth.anonymous: true`` (which the config requires to be said explicitly) lets anyone through and
is logged as a warning at every start and reload. A header that is not UTF-8 is a 400: it can
never succeed, and Alertmanager does not retry a 4xx (f014b6e answered 500 with a traceback, which
Alertmanager retries forever).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from aiohttp import web

from marketplace_exporter.bridge.config import Auth
from marketplace_exporter.write_api import authorization_header

log = logging.getLogger("marketplace_exporter.bridge")


def refusal(auth: Auth, request: web.Request) -> web.Response | None:
    """None when ``request`` may post; else the 400/401 answer to send."""
    header = authorization_header(request)  # raises the 400
    if auth.anonymous or credentials_match(auth, header):
        return None
    scheme = "Bearer" if auth.bearer_token is not None else "Basic"
    return web.json_response({"error": "missing or invalid credentials"}, status=401,
                             headers={"WWW-Authenticate": f'{scheme} realm="marketplace-bridge"'})


def credentials_match(auth: Auth, header: str) -> bool:
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if auth.bearer_token is not None and scheme.lower() == "bearer":
        return hmac.compare_digest(given.encode(), auth.bearer_token.reveal().encode())
    if auth.basic is not None and scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(given, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, ValueError):  # not base64, or not UTF-8 once decoded
            return False
        ok_user = hmac.compare_digest(user.encode(), auth.basic.username.encode())
        ok_password = hmac.compare_digest(password.encode(), auth.basic.password.reveal().encode())
        return ok_user and ok_password
    return False


def warn_if_anonymous(auth: Auth, path: str) -> None:
    """Say it loudly, at every start and reload, while the bridge takes anyone's webhooks."""
    if auth.anonymous:
        log.warning("bridge: %s sets auth.anonymous: true: ANYONE who can reach this port can post alerts to your "
                    "chat robots and reload the config. Set auth.bearer_token (Alertmanager: "
                    "http_config.authorization.credentials_file) unless this network is trusted", path)


__all__ = ["credentials_match", "refusal", "warn_if_anonymous"]
