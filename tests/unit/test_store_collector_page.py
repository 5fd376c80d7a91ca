"""Store → /metrics and store → status page: what a scrape and a person see after known probes.

Samples are read from the exposition /metrics serves (exposition.py); test_exposition.py checks it
against prometheus_client's own rendering of the reference collector."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, SkipReason, Step
from marketplace_exporter.config import CheckSpec
from marketplace_exporter.exposition import Exposition
from marketplace_exporter.model import CredentialObservation, Operation, ProbeOutcome, RateLimitObservation
from marketplace_exporter.secrets import REDACTOR, RedactingFilter, Secret
from marketplace_exporter.server.checks_query import CheckFilter, query
from marketplace_exporter.server.status_page import render_status_page
from marketplace_exporter.store import ProbeRecord, Store


def spec(account: str = "us-main", name: str = "participations", limited: bool = False) -> CheckSpec:
    operation = Operation(name, "test", rate_per_second=0.016, burst=15) if limited else Operation(name, "test")
    return CheckSpec(
        marketplace="amazon_sp", site="US", account=account, name=name, adapter=None,  # type: ignore[arg-type]
        operation=operation, interval=60, timeout=10, jitter=0, quota_budget=0.5, tags=(),
        base_url=None, auth_url=None, sandbox=False, credentials=None, params=NoParams())


def record(outcome: ProbeOutcome, code_label: str | None = None, at: float = 1000.0) -> ProbeRecord:
    return ProbeRecord(outcome=outcome, code_label=code_label, started_at=at, finished_at=at + 0.25,
                       duration=0.25, call_duration=0.2, steps=(Step.TOKEN, Step.CALL))


def sample(store: Store, metric: str, **labels: str) -> float | None:
    text = Exposition(store).render().decode()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == metric and found.labels == labels:
                return float(found.value)
    return None


async def page_html(store: Store, now: float, **filters: str) -> str:
    return render_status_page(store, await query(store, CheckFilter.parse(filters), now), now=now)


LABELS = {"marketplace": "amazon_sp", "site": "US", "account": "us-main", "check": "participations"}


def test_a_failed_probe_is_exported_with_reason_code_and_the_alerted_reasons_precreated() -> None:
    store, check = Store(), spec()
    store.reconcile((check,))
    assert sample(store, "marketplace_probe_success", **LABELS) is None  # no probe yet: absent, not 0
    for reason in ("auth", "permission", "throttled"):  # alerts fire on their first increase
        assert sample(store, "marketplace_probe_failures_total", **LABELS, reason=reason) == 0
    assert sample(store, "marketplace_probe_failures_total", **LABELS, reason="timeout") is None
    assert sample(store, "marketplace_probe_requests_total", **LABELS, step="call") == 0
    assert sample(store, "marketplace_probe_requests_total", **LABELS, step="token") is None
    assert sample(store, "marketplace_probe_skipped_total", **LABELS, reason="quota_budget") is None
    store.record(check, record(ProbeOutcome.failed(Reason.AUTH, "expired", code="Unauthorized",
                                                   http_status=403), "Unauthorized"), modelled_ratio=0.4)
    assert sample(store, "marketplace_probe_success", **LABELS) == 0
    assert sample(store, "marketplace_probe_http_status_code", **LABELS) == 403
    assert sample(store, "marketplace_probe_failures_total", **LABELS, reason="auth") == 1
    assert sample(store, "marketplace_probe_failures_total", **LABELS, reason="timeout") is None
    assert sample(store, "marketplace_api_errors_total", **LABELS, code="Unauthorized") == 1
    assert sample(store, "marketplace_probe_requests_total", **LABELS, step="token") == 1
    assert sample(store, "marketplace_rate_limit_remaining_ratio", **LABELS, source="modelled") == 0.4
    assert sample(store, "marketplace_rate_limit_remaining_ratio", **LABELS, source="observed") is None
    assert sample(store, "marketplace_request_duration_seconds_bucket", marketplace="amazon_sp", site="US",
                  check="participations", le="0.25") == 1
    assert sample(store, "marketplace_probe_last_success_timestamp_seconds", **LABELS) is None
    store.record(check, record(ProbeOutcome.failed(Reason.TIMEOUT, "slow")), None)
    assert sample(store, "marketplace_probe_failures_total", **LABELS, reason="timeout") == 1


def test_only_checks_a_quota_budget_can_skip_have_the_skipped_counter() -> None:
    store, limited = Store(), spec(limited=True)
    store.reconcile((limited,))
    assert sample(store, "marketplace_probe_skipped_total", **LABELS, reason="quota_budget") == 0
    store.record_skip(limited, SkipReason.QUOTA_BUDGET, 1000.0)
    assert sample(store, "marketplace_probe_skipped_total", **LABELS, reason="quota_budget") == 1


def test_success_records_credentials_headroom_and_values() -> None:
    store, check = Store(), spec()
    store.reconcile((check,))
    outcome = ProbeOutcome.ok(200, credentials=(CredentialObservation(Credential.ACCESS_TOKEN, 5000.0),),
                              rate_limit=RateLimitObservation(0.75, RateLimitSource.OBSERVED),
                              values=(("rate_limit_per_second", 0.016),))
    store.record(check, record(outcome), modelled_ratio=None)
    assert sample(store, "marketplace_probe_success", **LABELS) == 1
    assert sample(store, "marketplace_credential_expiry_timestamp_seconds", marketplace="amazon_sp",
                  site="US", account="us-main", credential="access_token") == 5000
    assert sample(store, "marketplace_rate_limit_remaining_ratio", **LABELS, source="observed") == 0.75
    assert sample(store, "marketplace_probe_value", **LABELS, name="rate_limit_per_second") == 0.016
    assert sample(store, "marketplace_probe_last_success_timestamp_seconds", **LABELS) == 1000.25


def test_series_of_a_removed_check_vanish_and_late_results_are_dropped() -> None:
    store, old = Store(), spec(account="gone")
    store.reconcile((old,))
    store.record(old, record(ProbeOutcome.ok(200, credentials=(
        CredentialObservation(Credential.ACCESS_TOKEN, 5.0),))), None)
    store.reconcile((spec(),))
    store.record(old, record(ProbeOutcome.ok(200)), None)  # a probe that was in flight during the reload
    text = Exposition(store).render().decode()
    assert 'account="gone"' not in text


async def test_status_page_escapes_everything_from_responses() -> None:
    store, check = Store(), spec()
    store.reconcile((check,))
    hostile = '<script>alert("x")</script>'
    store.record(check, record(ProbeOutcome.failed(Reason.CLIENT_ERROR, hostile, code=hostile)), None)
    html = await page_html(store, 1010.0, q=hostile)
    assert "no check matches" in html and "<script>" not in html
    html = await page_html(store, 1010.0)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "FAIL" in html and "client_error" in html and "10s ago" in html


async def test_status_page_shows_credential_countdown_with_thresholds() -> None:
    store, check = Store(), spec()
    store.reconcile((check,))
    store.record(check, record(ProbeOutcome.ok(200, credentials=(
        CredentialObservation(Credential.CLIENT_SECRET, 1000 + 3 * 86400),
        CredentialObservation(Credential.ACCESS_TOKEN, 1000 + 1800)))), None)
    html = await page_html(store, 1000.0)
    assert '<span class="warn">client_secret in 3d</span>' in html
    assert '<span class="muted">access_token in 30m</span>' in html  # routine renewal, not news


def test_secrets_do_not_print_and_are_scrubbed_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret.literal("tok-very-secret-123")
    assert "tok-very-secret" not in f"{secret} {secret!r} {[secret]}"
    value = secret.reveal()
    assert REDACTOR.redact(f"Bearer {value}") == "Bearer <redacted>"
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("token is %s", value)
        try:
            raise ValueError(f"bad token {value}")
        except ValueError:
            logger.exception("failed")
    assert "tok-very-secret-123" not in caplog.text
    assert "token is <redacted>" in caplog.text


def test_file_secrets_are_reread_after_rotation(tmp_path: object) -> None:
    import os
    from pathlib import Path

    path = Path(str(tmp_path)) / "token"
    path.write_text("first-token-value\n")
    secret = Secret("file", str(path))
    assert secret.reveal() == "first-token-value"
    path.write_text("second-token-value\n")
    os.utime(path, (os.stat(path).st_atime, os.stat(path).st_mtime + 5))
    assert secret.reveal() == "second-token-value"


def test_debug_trace_redacts_tokens_in_a_response_before_any_adapter_saw_them() -> None:
    from marketplace_exporter.engine.debuglog import DebugLog
    from marketplace_exporter.model import HttpResponse, RequestSpec

    trace = DebugLog(enabled=True)
    trace.request(RequestSpec("POST", "https://api.amazon.com/auth/o2/token",
                              body=b"grant_type=refresh_token&refresh_token=Atzr|never-seen-1&client_id=c",
                              sensitive=frozenset({"refresh_token"})))
    trace.response(HttpResponse(200, {"set-cookie": "s=never-seen-2"}, b'{"access_token": "Atza|never-seen-3",'
                                b' "refresh_token":"Atzr|never-seen-4", "expires_in": 3600}'), 0.01)
    text = "\n".join(trace.lines)
    assert "never-seen" not in text
    assert "expires_in" in text and "client_id=c" in text


async def test_status_query_pages_and_counts_with_and_without_a_text_search() -> None:
    store = Store()
    checks = [spec(account=f"acct-{i:03d}") for i in range(250)]
    store.reconcile(checks)
    for i, check in enumerate(checks):
        outcome = ProbeOutcome.failed(Reason.TIMEOUT, "slow") if i % 10 == 0 else ProbeOutcome.ok(200)
        store.record(check, record(outcome), None)
    page = await query(store, CheckFilter.parse({}), 1000.0)
    assert page.total == 250 and page.pages == 3 and len(page.checks) == 100
    assert [c.status.spec.account for c in page.checks[:25]] == [f"acct-{i:03d}" for i in range(0, 250, 10)]
    third = await query(store, CheckFilter.parse({"page": "3"}), 1000.0)
    assert len(third.checks) == 50 and third.checks[-1].status.spec.account == "acct-249"
    searched = await query(store, CheckFilter.parse({"q": "ACCT-1", "per_page": "40"}), 1000.0)
    assert searched.total == 100 and len(searched.checks) == 40  # acct-100..199, one page of them
    failing = await query(store, CheckFilter.parse({"state": "failing", "q": "acct-1"}), 1000.0)
    assert failing.total == 10 and {c.status.health.value for c in failing.checks} == {"failing"}
