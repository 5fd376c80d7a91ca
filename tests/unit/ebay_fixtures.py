"""Shared by the eBay adapter tests: credentials, contexts and literal answers (no HTTP)."""

from __future__ import annotations

from typing import Any

from adapter_harness import NOW, adapter_driver, context_builder, json_response

from marketplace_exporter.adapters.base import ProbeContext
from marketplace_exporter.adapters.ebay import Ebay, EbayCredentials, EbayParams, token_key

CLIENT_ID = "TestSell-monitor-PRD-1a2b3c4d5-6e7f8a9b"
CLIENT_SECRET = "PRD-test-cert-id-0001"
REFRESH = "v^1.1#i^1#r^1#test-refresh-token"
USER_TOKEN = "v^1.1#i^1#p^3#test-user-token"
APP_TOKEN = "v^1.1#i^1#p^1#test-app-token"
SELL_ACCOUNT = "https://api.ebay.com/oauth/api_scope/sell.account.readonly"


def creds(**overrides: Any) -> EbayCredentials:
    values: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": {"value": CLIENT_SECRET},
                              "refresh_token": {"value": REFRESH}}
    return EbayCredentials.model_validate(values | overrides)


make_ctx = context_builder(alias="us-main", site="US", operation="privilege",
                           credentials=creds, params=EbayParams)
drive = adapter_driver(Ebay)
resp = json_response


USER_GRANT = resp(200, {"access_token": USER_TOKEN, "expires_in": 7200, "token_type": "User Access Token"})
APP_GRANT = resp(200, {"access_token": APP_TOKEN, "expires_in": 7200, "token_type": "Application Access Token"})
PRIVILEGE = resp(200, {"sellerRegistrationCompleted": True,
                       "sellingLimit": {"amount": {"currency": "USD", "value": "5000.0"}, "quantity": 250}})


def rate(limit: Any, remaining: Any, reset: Any = "2025-10-10T00:00:00.000Z") -> dict[str, Any]:
    return {"count": 0, "limit": limit, "remaining": remaining, "reset": reset, "timeWindow": 86400}


def rate_limits(*apis: tuple[str, str, str, str, list[dict[str, Any]]]) -> dict[str, Any]:
    return {"rateLimits": [{"apiContext": c, "apiName": n, "apiVersion": v,
                            "resources": [{"name": r, "rates": rates}]} for c, n, v, r, rates in apis]}


RATE_LIMITS = resp(200, rate_limits(("sell", "account", "v1", "sell.account", [rate(25000, 24000)]),
                                    ("developer", "analytics", "v1_beta", "developer.analytics", [rate(5000, 500)])))


def error(error_id: Any, message: str = "m", long_message: str = "", **extra: Any) -> dict[str, Any]:
    entry = {"errorId": error_id, "domain": "ACCESS", "category": "REQUEST", "message": message,
             "longMessage": long_message} | extra
    return {"errors": [entry]}


def cached_ctx(**overrides: Any) -> ProbeContext:
    ctx = make_ctx(**overrides)
    ctx.tokens.put(token_key(ctx, app_token=False), USER_TOKEN, NOW + 3000)
    ctx.tokens.put(token_key(ctx, app_token=True), APP_TOKEN, NOW + 3000)
    return ctx
