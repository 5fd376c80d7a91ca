"""Shared by the Walmart adapter tests: credentials, contexts and literal answers (no HTTP)."""

from __future__ import annotations

from typing import Any

from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.adapters.walmart import HOST, SANDBOX_HOST, Walmart, WalmartCredentials, token_key

NOW_MS = "1760000000000"
CLIENT_ID = "0f1e2d3c-test-client-id"
CLIENT_SECRET = "test-walmart-client-secret-value"
REFRESH = "APXcIoTpKMH9OQN-test-refresh-token"
TOKEN = "eyJraWQiOiI1MWY3MjM0Ny0wYWY5LTRhZ.test-access-token"


def creds(**overrides: Any) -> WalmartCredentials:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": {"value": CLIENT_SECRET}}
    return WalmartCredentials.model_validate(values | overrides)


def partner_creds(**overrides: Any) -> WalmartCredentials:
    return creds(partner_id="43423324", refresh_token={"value": REFRESH}, **overrides)


make_ctx = context_builder(alias="us-main", site="US", operation="token_detail",
                           credentials=creds)
drive = adapter_driver(Walmart)
resp = json_response


def wm_error(code: str, description: str = "", **extra: Any) -> dict[str, Any]:
    """Walmart's error envelope as live gateways send it: ``error``, a list [OBS F20]."""
    return {"error": [{"code": code, "description": description, "severity": "ERROR", "category": "DATA",
                       **extra}]}


GOOD_TOKEN = resp(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 900})  # [F1]
DETAIL = {"expire_at": "1760000900000", "issued_at": NOW_MS, "is_valid": True, "is_channel_match": True,
          "scopes": {"reports": "view_only", "item": "full_access", "price": "no_access"}}  # [F1]
PROFILE = {"partner": {"partnerId": "43423324", "partnerDisplayName": "Sim"},
           "configurations": [{"configurationName": "ACCOUNT", "configuration": {"status": "ACTIVE"}}]}  # [F15]
HEADROOM = {"x-current-token-count": "17", "x-next-replenish-time": "1760000003000"}
GOOD_DETAIL = resp(200, DETAIL, HEADROOM)
UNAUTHORIZED = wm_error("UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized", field="UNAUTHORIZED",
                        info="Unauthorized token or incorrect authorization header")  # [F5][F14]


def cached_ctx(**overrides: Any) -> ProbeContext:
    ctx = make_ctx(**overrides)
    ctx.tokens.put(token_key(ctx, _token_url(ctx)), TOKEN, NOW + 600)
    return ctx


def _token_url(ctx: ProbeContext) -> str:
    base = (ctx.base_url or (SANDBOX_HOST if ctx.sandbox else HOST)).rstrip("/")
    return f"{(ctx.auth_url or base).rstrip('/')}/v3/token"
