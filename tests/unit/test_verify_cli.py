"""The ``verify`` command's loop (rounds, retries, timeout), its table, and the API's request
validation — driven with plain values; the real exporter is in tests/integration/test_verify_gate.py."""

from __future__ import annotations

import io
from typing import Any

import pytest

from marketplace_exporter.api_client import ExporterRefused, ExporterUnreachable
from marketplace_exporter.catalogue import VerifyResult
from marketplace_exporter.deploys.verify_api import ProbeRounds, RequestInvalid, parse_request
from marketplace_exporter.deploys.verify_cli import gate, render, run_on_fail
from marketplace_exporter.engine import QuotaWait


class FakeExporter:
    """Answers the gate's rounds from a script; time only moves when the gate sleeps."""

    def __init__(self, *script: dict[str, Any] | Exception) -> None:
        self.script = list(script)
        self.bodies: list[dict[str, Any]] = []
        self.now = 1000.0
        self.sleeps: list[float] = []

    def call(self, body: dict[str, Any]) -> Any:
        self.bodies.append(dict(body))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answer(result: str | None = None, *, now: float = 1000.0, since: float = 1000.0, window: float = 60.0,
           **extra: Any) -> dict[str, Any]:
    return {"result": result, "final": result is not None, "since": since, "now": now,
            "window_seconds": window, "reasons": [], "warnings": [], "checks": [],
            "probes": {"sent": 1, "quota_wait": 0}, **extra}


def run(fake: FakeExporter, timeout: float = 120.0, interval: float = 10.0) -> tuple[VerifyResult, str]:
    err = io.StringIO()
    result, _ = gate(fake.call, {"service": "s"}, timeout=timeout, interval=interval, clock=fake.clock,
                     sleep=fake.sleep, err=err)
    return result, err.getvalue()


def test_rounds_repeat_with_the_exporters_since_until_the_answer_is_final() -> None:
    fake = FakeExporter(answer(since=500.0, now=500.0), answer(since=500.0, now=510.0),
                        answer("pass", since=500.0, now=560.0, reasons=["2 check(s) within tolerance"]))
    result, log = run(fake)
    assert result is VerifyResult.PASS
    assert [body.get("since") for body in fake.bodies] == [None, 500.0, 500.0]
    assert "verify: 2 check(s) within tolerance" in log


def test_the_last_pause_ends_when_the_window_closes() -> None:
    fake = FakeExporter(answer(since=0.0, now=57.0, window=60.0), answer("pass", since=0.0, now=60.0))
    run(fake, interval=10.0)
    assert fake.sleeps == [3.0]


def test_an_exporter_down_from_the_start_is_undecided_at_once() -> None:
    fake = FakeExporter(ExporterUnreachable("cannot reach the exporter at http://x"))
    result, log = run(fake)
    assert result is VerifyResult.UNDECIDED
    assert fake.sleeps == []
    assert "cannot reach the exporter at http://x" in log


def test_a_blip_during_the_gate_is_retried_but_a_lasting_outage_is_not() -> None:
    blip = FakeExporter(answer(), ExporterUnreachable("down"), answer("fail"))
    assert run(blip)[0] is VerifyResult.FAIL
    gone = FakeExporter(answer(), ExporterUnreachable("down"), ExporterUnreachable("down"),
                        ExporterUnreachable("down"))
    result, log = run(gone)
    assert result is VerifyResult.UNDECIDED
    assert log.count("retrying") == 2


def test_a_refusal_is_undecided_with_the_exporters_reason() -> None:
    fake = FakeExporter(ExporterRefused(401, "invalid Bearer token"))
    result, log = run(fake)
    assert result is VerifyResult.UNDECIDED
    assert "exporter refused the request (HTTP 401): invalid Bearer token" in log


def test_the_audit_log_database_down_is_a_missed_round_not_a_verdict() -> None:
    """503 with Retry-After (the exporter's database is down, nothing wrong with the request):
    retried like an unreachable exporter, even on the first round."""
    down = ExporterRefused(503, "the audit log database postgresql://db/deploys is unavailable", retry_after="2")
    recovered = FakeExporter(down, answer("pass"))
    assert run(recovered)[0] is VerifyResult.PASS
    lasting = FakeExporter(down, down, down)
    result, log = run(lasting)
    assert result is VerifyResult.UNDECIDED and log.count("retrying") == 2


def test_no_decision_before_the_timeout_is_undecided() -> None:
    fake = FakeExporter(*[answer(since=1000.0, now=1000.0, window=600.0)] * 20)
    result, log = run(fake, timeout=35.0, interval=10.0)
    assert result is VerifyResult.UNDECIDED
    assert "no decision within --timeout 35s" in log
    assert sum(fake.sleeps) == 35.0


def test_warnings_are_printed_once() -> None:
    warned = {"warnings": ["inside freeze window 'double-11' (policy: warn)"]}
    fake = FakeExporter(answer(**warned), answer(**warned), answer("pass", **warned))
    _, log = run(fake)
    assert log.count("WARNING: inside freeze window") == 1


def side(samples: int, successes: int, p50: float | None, p95: float | None) -> dict[str, Any]:
    return {"samples": samples, "successes": successes, "ratio": successes / samples if samples else None,
            "p50_seconds": p50, "p95_seconds": p95}


def test_the_table_shows_baseline_against_now_with_reasons_and_codes() -> None:
    text = render(answer(
        "fail", marker={"id": 7, "service": "order-sync", "environment": "production", "version": "v2",
                        "received_at_iso": "2026-11-26T10:00:00.000Z", "actor": "ci"},
        reasons=["1 check(s) regressed: amazon_sp/us-main/participations"],
        checks=[{"check": "amazon_sp/us-main/participations", "site": "US", "verdict": "fail",
                 "baseline": side(10, 10, 0.21, 0.4), "candidate": side(4, 0, None, None),
                 "reasons": ["green before the deploy (100%), now failed 4 times in a row"],
                 "failures": ["auth:Unauthorized ×4"]},
                {"check": "shopee/sg-main/get_shop_info", "site": "SG", "verdict": "no_baseline",
                 "baseline": side(0, 0, None, None), "candidate": side(2, 2, 0.1, 0.1),
                 "reasons": [], "failures": []}]))
    assert text.splitlines() == [
        "deploy #7 order-sync/production v2 started 2026-11-26T10:00:00.000Z by ci",
        "CHECK                             SITE  BEFORE                           AFTER"
        "                           VERDICT      DETAILS",
        "amazon_sp/us-main/participations  US    100% of 10, p50 210ms p95 400ms  0% of 4"
        "                         FAIL         green before the deploy (100%), now failed 4 times in a row; "
        "auth:Unauthorized ×4",
        "shopee/sg-main/get_shop_info      SG    -                                100% of 2, p50 100ms p95 100ms"
        "  NO_BASELINE",
        "RESULT: FAIL 失败（需回滚） — 1 check(s) regressed: amazon_sp/us-main/participations",
    ]



def test_a_gate_decided_before_probing_prints_no_empty_check_table() -> None:
    text = render(answer(
        "fail", marker={"id": 4, "service": "order-sync", "environment": "production", "version": "v2",
                        "received_at_iso": "2026-11-11T02:00:00.000Z"},
        reasons=["the deploy was marked inside freeze window 'double-11' (policy: block)"], checks=[]))
    assert text.splitlines() == [
        "deploy #4 order-sync/production v2 started 2026-11-11T02:00:00.000Z",
        "RESULT: FAIL 失败（需回滚） — the deploy was marked inside freeze window 'double-11' (policy: block)",
    ]

@pytest.mark.parametrize(("body", "field", "message"), [
    ([], "body", "expected a JSON object, got a list"),
    ({"environment": "prod"}, "service", "required: letters, digits, '_', '.', '-' (max 63)"),
    ({"service": "a b", "environment": "prod"}, "service", "required: letters, digits, '_', '.', '-' (max 63)"),
    ({"service": "s", "environment": "prod", "window": 5}, "window", "unknown field; expected some of checks, "
     "environment, probe, service, since, site, window_seconds"),
    ({"service": "s", "environment": "prod", "window_seconds": 0}, "window_seconds", "expected seconds in (0, 3600]"),
    ({"service": "s", "environment": "prod", "window_seconds": True}, "window_seconds",
     "expected seconds in (0, 3600]"),
    ({"service": "s", "environment": "prod", "since": 5.0}, "since",
     "expected the 'since' of an earlier answer (unix seconds, last 24 h)"),
    ({"service": "s", "environment": "prod", "site": ["US"]}, "site",
     "expected a site code such as US, or a comma-separated list"),
    ({"service": "s", "environment": "prod", "checks": ""}, "checks", "expected a tag such as critical"),
    ({"service": "s", "environment": "prod", "probe": "yes"}, "probe", "expected true or false"),
])
def test_bad_requests_name_the_field(body: object, field: str, message: str) -> None:
    with pytest.raises(RequestInvalid) as caught:
        parse_request(body, now=1_800_000_000.0)
    assert (caught.value.field, caught.value.message) == (field, message)


def test_a_good_request_is_normalised() -> None:
    request = parse_request({"service": "s", "environment": "prod", "site": " us, de ", "checks": "critical",
                             "since": 1_799_999_990, "window_seconds": 120}, now=1_800_000_000.0)
    assert (request.sites, request.tag, request.since, request.window, request.probe) == (
        ("US", "DE"), "critical", 1_799_999_990.0, 120.0, True)


class QuotaEngine:
    """probe_now answers from a per-check script: a record stand-in or a QuotaWait."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.probed: list[str] = []

    async def probe_now(self, check_id: str) -> Any:
        self.probed.append(check_id)
        return self.answers[check_id].pop(0)


class Spec:
    def __init__(self, check_id: str) -> None:
        self.id = check_id


async def test_a_check_out_of_quota_is_not_knocked_on_again_until_its_budget_frees() -> None:
    now = [100.0]
    rounds = ProbeRounds(clock=lambda: now[0])
    engine = QuotaEngine({"a": [object(), object(), object()], "b": [QuotaWait(30.0), object()]})
    specs: Any = [Spec("a"), Spec("b")]
    assert await rounds.run(engine, specs) == {"sent": 1, "quota_wait": 1}
    now[0] = 110.0
    assert await rounds.run(engine, specs) == {"sent": 1, "quota_wait": 1}
    assert engine.probed == ["a", "b", "a"]
    now[0] = 131.0
    assert await rounds.run(engine, specs) == {"sent": 2, "quota_wait": 0}
    assert engine.probed[-2:] == ["a", "b"]


def test_the_rollback_command_line_is_not_echoed_into_the_ci_log(capfd: pytest.CaptureFixture[str]) -> None:
    """A pipeline may inline a token in --on-fail; only the program name reaches stderr."""
    code = run_on_fail("true --token=s3cr3t-rollback-token", VerifyResult.FAIL, "order-sync", "production")
    err = capfd.readouterr().err
    assert code == 0
    assert "running the --on-fail command (true ...)" in err
    assert "s3cr3t-rollback-token" not in err
