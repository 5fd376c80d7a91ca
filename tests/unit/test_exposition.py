"""The kept-rendered /metrics (exposition.py) says exactly what prometheus_client says about the
same store, in both formats, after results, reloads and removed checks; promtool accepts both.

The reference is the plain collector (collector.py) rendered by prometheus_client's own
``generate_latest``; both outputs are parsed with prometheus_client's parsers and compared as
sample sets, plus each family's type and help.
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import require_binary
from loop_turns import loop_turns
from prometheus_client import Counter
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from marketplace_exporter.adapters.base import NoParams
from marketplace_exporter.catalogue import Credential, RateLimitSource, Reason, SkipReason, Step
from marketplace_exporter.collector import new_registry
from marketplace_exporter.config import CheckSpec, LoadedConfig
from marketplace_exporter.config.source import ConfigSource
from marketplace_exporter.core import Core
from marketplace_exporter.exposition import Exposition
from marketplace_exporter.model import CredentialObservation, Operation, ProbeOutcome, RateLimitObservation
from marketplace_exporter.server import scrape
from marketplace_exporter.store import ProbeRecord, Store

Sample = tuple[str, frozenset[tuple[str, str]], float]


def spec(account: str, name: str, *, interval: float = 60, limited: bool = False,
         marketplace: str = "amazon_sp", site: str = "US", tags: tuple[str, ...] = ()) -> CheckSpec:
    operation = Operation(name, "t", rate_per_second=0.016, burst=15) if limited else Operation(name, "t")
    return CheckSpec(
        marketplace=marketplace, site=site, account=account, name=name, adapter=None,  # type: ignore[arg-type]
        operation=operation, interval=interval, timeout=10, jitter=0, quota_budget=0.5, tags=tags,
        base_url=None, auth_url=None, sandbox=False, credentials=None, params=NoParams())


def record(outcome: ProbeOutcome, at: float, code_label: str | None = None, call: float | None = 0.3,
           steps: tuple[Step, ...] = (Step.CALL,), tls: tuple[tuple[str, float], ...] = ()) -> ProbeRecord:
    return ProbeRecord(outcome=outcome, code_label=code_label, started_at=at, finished_at=at + 0.4,
                       duration=0.4, call_duration=call, steps=steps, tls=tls)


def samples(families: Iterator[object]) -> set[Sample]:
    return {(s.name, frozenset(s.labels.items()), s.value) for f in families for s in f.samples}  # type: ignore[attr-defined]


def families(text: str, om: bool) -> dict[str, tuple[str, str]]:
    parsed = parse_openmetrics(text) if om else parse_text(text)
    return {f.name: (f.type, f.documentation) for f in parsed}


def assert_same(store: Store, exposition: Exposition) -> str:
    """Both formats agree with prometheus_client; returns the new text output."""
    exposition.refresh_now()
    new_text = exposition.render().decode()
    old_text = generate_latest(new_registry(store)).decode()
    assert samples(parse_text(new_text)) == samples(parse_text(old_text))
    assert families(new_text, False) == families(old_text, False)
    new_om = exposition.render(openmetrics=True).decode()
    old_om = openmetrics.generate_latest(new_registry(store)).decode()
    assert samples(parse_openmetrics(new_om)) == samples(parse_openmetrics(old_om))
    assert families(new_om, True) == families(old_om, True)
    type_lines = [line for line in new_text.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines)), "a family is announced twice"
    return new_text


HOSTILE = 'we"ird\\acc\nount'


@pytest.fixture
def busy_store() -> Store:
    store = Store()
    checks = [spec("us-main", "participations", limited=True), spec("us-main", "orders", tags=("critical", "eu")),
              spec(HOSTILE, "orders", site="DE", tags=("critical", "critical")),
              spec("sg-main", "shop", marketplace="shopee", site="SG")]
    store.reconcile(checks)
    store.set_deprecations({("amazon_sp", "feeds-2020"): 1.8e9})
    us, orders, hostile, shop = checks
    store.record(us, record(ProbeOutcome.ok(200, rate_limit=RateLimitObservation(
        0.5, RateLimitSource.OBSERVED, remaining=7, reset_at=2.0e9), credentials=(
        CredentialObservation(Credential.ACCESS_TOKEN, 5000.0), CredentialObservation(Credential.REFRESH_TOKEN, 9e9)),
        values=(("rate_limit_per_second", 0.016),)), 1000, steps=(Step.TOKEN, Step.CALL)), 0.9)
    store.record(orders, record(ProbeOutcome.failed(Reason.SERVER_ERROR, "boom", code="InternalFailure"), 1001,
                                code_label="other", tls=(("api.example.com", 1.9e9),)), None)
    store.record(hostile, record(ProbeOutcome.failed(Reason.TIMEOUT, "slow"), 1002, call=None), None)
    store.record_skip(us, SkipReason.QUOTA_BUDGET, 1003)
    store.observe_lateness(0.2)
    store.mark_reload(True, 1000.0)
    del shop  # pending: never probed
    return store


def test_same_samples_as_prometheus_client_after_results(busy_store: Store) -> None:
    text = assert_same(busy_store, Exposition(busy_store))
    assert r'account="we\"ird\\acc\nount"' in text  # escaped as the text format requires


def test_same_samples_after_a_reload_and_a_removed_check(busy_store: Store) -> None:
    exposition = Exposition(busy_store)
    assert_same(busy_store, exposition)
    keep = [spec("us-main", "participations", limited=True, interval=30, tags=("critical",)),  # changed
            spec("sg-main", "shop", marketplace="shopee", site="SG"), spec("new", "fresh")]
    busy_store.reconcile(keep)
    busy_store.set_deprecations({})
    busy_store.mark_reload(False, 2000.0)
    busy_store.record(keep[1], record(ProbeOutcome.failed(Reason.AUTH, "expired", code="x"), 2001), None)
    text = assert_same(busy_store, exposition)
    assert 'check="orders"' not in text and 'account="we' not in text and "api.example.com" not in text
    assert 'marketplace_probe_interval_seconds{account="us-main",check="participations",' \
           'marketplace="amazon_sp",site="US"} 30.0' in text
    assert 'marketplace_probe_tag_info{account="us-main",check="participations",marketplace="amazon_sp",' \
           'site="US",tag="critical"} 1.0' in text and 'tag="eu"' not in text
    busy_store.reconcile(())
    assert "account=" not in assert_same(busy_store, exposition)


def test_a_result_landing_while_a_scrape_is_written_waits_for_the_next_scrape(busy_store: Store) -> None:
    exposition = Exposition(busy_store)
    exposition.refresh_now()
    pieces = exposition.chunks(openmetrics=False)
    first = next(pieces)
    check = spec("us-main", "orders")
    busy_store.reconcile((check,))
    busy_store.record(check, record(ProbeOutcome.ok(200), 3000), None)
    rest = first + b"".join(pieces)
    parse_text(rest.decode())  # still one valid exposition
    assert_same(busy_store, exposition)


async def test_results_are_rendered_in_the_background_before_a_scrape_asks(busy_store: Store) -> None:
    exposition = Exposition(busy_store)
    exposition.refresh_now()
    check = spec("us-main", "orders", tags=("critical", "eu"))
    busy_store.reconcile((check,))
    busy_store.record(check, record(ProbeOutcome.ok(201), 5000), None)
    assert exposition.waiting() > 0
    renderer = asyncio.create_task(exposition.keep_current(every=0.01))
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if not exposition.waiting():
                break
    finally:
        renderer.cancel()
    assert exposition.waiting() == 0
    written = b"".join(exposition.chunks(openmetrics=False)).decode()  # no refresh on this path
    assert 'marketplace_probe_http_status_code{account="us-main",check="orders",marketplace="amazon_sp",' \
           'site="US"} 201.0' in written


def test_promtool_accepts_both_outputs(busy_store: Store, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    for name, body in (("new", Exposition(busy_store).render()), ("old", generate_latest(new_registry(busy_store)))):
        result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
        assert result.returncode == 0, f"{name}: {result.stdout.decode()}{result.stderr.decode()}"


@pytest.fixture
async def client(busy_store: Store, aiohttp_client: object) -> TestClient:  # type: ignore[type-arg]
    registry = scrape.feature_registry()
    Counter("marketplace_feature_things", "A feature's own counter.", registry=registry).inc(3)
    app = web.Application()
    unused = LoadedConfig(path="unused.yml", checks=(), max_body_bytes=1 << 20, concurrency=1, concurrency_per_host=1)
    scrape.install(Core(source=ConfigSource("unused.yml"), initial=unused, store=busy_store, registry=registry), app)
    return await aiohttp_client(app)  # type: ignore[operator,no-any-return]


async def test_metrics_endpoint_negotiates_format_and_gzip(client: TestClient, busy_store: Store) -> None:  # type: ignore[type-arg]
    plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert plain.headers["Server"].startswith("marketplace-exporter/")
    text = await plain.text()
    assert "marketplace_feature_things_total 3.0" in text  # the features' collectors come after ours
    type_lines = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(type_lines) == len(set(type_lines))
    assert samples(parse_text(text)) >= samples(parse_text(generate_latest(new_registry(busy_store)).decode()))

    zipped = await client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await zipped.read()).decode() == text

    om = await client.get("/metrics", headers={
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    om_text = await om.text()
    assert om_text.endswith("# EOF\n") and om_text.count("# EOF") == 1
    assert samples(parse_openmetrics(om_text)) == samples(parse_text(text))


def test_a_feature_cannot_take_a_probe_family_name(busy_store: Store) -> None:
    registry = scrape.feature_registry()
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("marketplace_probes", "clash", registry=registry)


def test_the_request_duration_histogram_can_be_dropped(busy_store: Store) -> None:
    exposition = Exposition(busy_store)
    assert "marketplace_request_duration_seconds_bucket{" in assert_same(busy_store, exposition)
    busy_store.keep_request_durations(False)
    check = spec("us-main", "orders")
    busy_store.record(check, record(ProbeOutcome.ok(200), 4000), None)
    text = assert_same(busy_store, exposition)
    assert "marketplace_request_duration_seconds_bucket{" not in text
    assert "# TYPE marketplace_request_duration_seconds histogram" in text  # the family stays declared



async def test_a_large_scrape_lets_the_loop_run_between_its_pieces(aiohttp_client: object) -> None:
    """A fast reader on loopback never fills the socket's buffer, so ``write()`` never suspends:
    without a yield per piece a 50,000-check scrape held the loop for 100 ms (bench/scale.py), and
    every probe in flight reported that as marketplace latency."""
    store = Store()
    checks = [spec(f"acct-{n:04d}", "orders") for n in range(2000)]
    store.reconcile(checks)
    for n, check in enumerate(checks):
        store.record(check, record(ProbeOutcome.ok(200), 1000 + n), None)
    app = web.Application()
    unused = LoadedConfig(path="unused.yml", checks=(), max_body_bytes=1 << 20, concurrency=1, concurrency_per_host=1)
    scrape.install(Core(source=ConfigSource("unused.yml"), initial=unused, store=store,
                        registry=scrape.feature_registry()), app)
    client = await aiohttp_client(app)  # type: ignore[operator]
    exposition = app[scrape.EXPOSITION]
    seen = []
    pieces = exposition.chunks
    async with loop_turns() as turns:

        def watched(openmetrics: bool) -> Iterator[bytes]:
            for piece in pieces(openmetrics):
                seen.append(turns[0])  # how often the loop had turned when this piece was made
                yield piece

        exposition.chunks = watched
        body = await (await client.get("/metrics", headers={"Accept-Encoding": "identity"})).read()
    assert body.count(b"\nmarketplace_probe_success{") == 2000
    assert len(seen) >= 4, seen  # the test needs a scrape of several pieces
    assert all(later > earlier for earlier, later in zip(seen, seen[1:], strict=False)), seen
