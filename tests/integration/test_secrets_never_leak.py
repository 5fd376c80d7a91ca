"""No configured secret ever leaves the exporter, whatever the marketplace answers.

Error paths are where secrets leak: an exception message quoting a request, a debug trace
showing the token exchange's form body, a truncated token response echoed as "invalid JSON". So
the real demo exporter (logging at debug level) is driven through every fault kind the simulator
has, and every page it serves — status page, /metrics, /probe and /probe?debug=true for every
configured check — plus its whole log is searched for every secret of the demo config.

The Amazon token exchange is the riskiest step (its request carries the client secret and the
refresh token, its response a fresh access token), but the exporter caches the access token for an
hour, so a plain fault would never reach it. Each fault is therefore also replayed on the LWA
endpoint while a ``token_expired`` on the API call makes the exporter drop its token after every
probe, so every probe exchanges the refresh token again.

``/probe`` sends at most one probe per check per interval and answers from the newest result
otherwise (engine/on_demand.py), so a fault is reached by a fresh ``debug=true`` probe when the
check's on-demand probe is free, else by the background schedule: the test waits for the simulator
to report the fault applied, and only the token exchange asks for a fresh trace. The demo runs with
its default interval cut from 5 s to 1 s (``DEMO_CONFIG_EDIT``), so those waits are short.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
from conftest import DemoExporter, demo_secret_values, local_client

from marketplace_exporter.simulator.faults import FAULT_NAMES

#: debug logging: the most verbose the exporter gets, so the most it could leak
EXPORTER_LOG_LEVEL = "debug"
#: the demo's intervals in seconds (5 s default; 10 s, 30 s for some checks) divided by this, its
#: 3 s timeout cut to 0.8 s: every wait below is a few intervals, and the background probes meet
#: each fault five times as often
SPEED_UP = 5
INTERVAL_S = 5.0 / SPEED_UP


def DEMO_CONFIG_EDIT(text: str) -> str:  # noqa: N802 (the fixture reads this module attribute)
    """The demo config with its second-long intervals divided by :data:`SPEED_UP` (a 15 min one
    stays) and a 0.8 s timeout; the demo's secrets, accounts and faults are unchanged."""
    for before in ("  interval: 5s\n", "  timeout: 3s\n"):
        assert text.count(before) == 1, f"the demo's defaults changed: no {before.strip()!r} to speed up"
    text = re.sub(r"\binterval: (\d+)s\b", lambda found: f"interval: {int(found[1]) / SPEED_UP:g}s", text)
    return text.replace("  timeout: 3s\n", "  timeout: 800ms\n")


#: every simulator fault kind, with the value it needs (None: the fault takes none, or its default)
FAULT_VALUES: dict[str, float | None] = {
    "latency": 0.2,
    "http_status": 401,
    "throttle": None,
    "token_expired": None,
    "permission_denied": None,
    "server_error": None,
    "hang": None,
    "reset": None,
    "malformed_body": None,
    "huge_body": 2,  # MiB: past the exporter's 1 MiB body limit, and quick to stream
    "echo_headers": None,  # the error body quotes the request: every header, query and body
}
AMAZON_CHECK = "amazon_sp/us-main/marketplace_participations"
#: Amazon LWA access tokens start with this; the simulator mints such tokens on every exchange
ACCESS_TOKEN_PREFIX = "Atza|"


def _needles() -> dict[str, str]:
    """Every secret as it could appear in a page or log: raw, percent-encoded (query strings and
    form bodies), plus the LWA access-token prefix the exporter itself receives."""
    needles: dict[str, str] = {}
    for secret in [*demo_secret_values(), ACCESS_TOKEN_PREFIX]:
        for variant in {secret, quote(secret, safe=""), quote_plus(secret)}:
            needles[variant] = secret
    return needles


def _leaks(text: str) -> list[str]:
    return sorted({f"{secret!r} (as {variant!r})" for variant, secret in _needles().items() if variant in text})


@pytest.fixture
def sim(demo_exporter: DemoExporter) -> DemoExporter:
    """The demo exporter with no fault active before the test (a failed test may leave one)."""
    demo_exporter.clear_faults()
    return demo_exporter


#: a refused or cached /probe is asked again when a fresh probe is this close (one interval)
FRESH_WAIT_S = INTERVAL_S + 0.5
#: ... and, when a fresh trace is needed, after a throttled check's back-off (16 intervals at most)
HOLD_WAIT_S = 16 * INTERVAL_S + 4.0


async def _fetch(client: httpx.AsyncClient, url: str, *, fresh: bool = False) -> tuple[str, int, str]:
    """GET ``url``; a /probe refused for a few seconds (the check's on-demand probe or quota budget
    is spent) is asked again then, as is a cached trace when ``fresh`` (eu-main's budget, a minute
    away, is left refused)."""
    for _attempt in range(6):
        # /probe of a hung check answers after the check's 3 s timeout: the client waits longer
        response = await client.get(url)
        wait = float(response.headers.get("Retry-After", "0")) if response.status_code == 429 else 0.0
        if fresh and response.headers.get("X-Probe-Result") == "cached":
            wait = float(response.text.split("possible in ", 1)[1].split("s", 1)[0]) + 0.2
        if not 0 < wait <= (HOLD_WAIT_S if fresh else FRESH_WAIT_S):
            break
        await asyncio.sleep(wait)
    return url, response.status_code, response.text


async def _fetch_all(exporter: DemoExporter, urls: list[str], *, fresh: bool = False) -> list[tuple[str, int, str]]:
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        return list(await asyncio.gather(*(_fetch(client, url, fresh=fresh) for url in urls)))


async def _wait_applied(exporter: DemoExporter, fault_id: str, seconds: float = 4 * FRESH_WAIT_S) -> int:
    """How often the simulator applied the fault, once it has (background probes every interval)."""
    deadline = time.monotonic() + seconds
    while True:
        applied = sum(f["applied"] for f in _active_faults(exporter) if f["id"] == fault_id)
        if applied > 0 or time.monotonic() > deadline:
            return applied
        await asyncio.sleep(0.2)


def _probe_urls(exporter: DemoExporter, check_ids: list[str]) -> list[str]:
    urls = []
    for check_id in check_ids:
        urls += [f"{exporter.url}/probe?check={check_id}", f"{exporter.url}/probe?check={check_id}&debug=true"]
    return urls


def _active_faults(exporter: DemoExporter) -> list[dict[str, Any]]:
    with local_client() as client:
        faults: list[dict[str, Any]] = client.get(f"{exporter.sim_url}/__sim/faults").json()["faults"]
    return faults


def _assert_clean(exporter: DemoExporter, responses: list[tuple[str, int, str]], what: str) -> None:
    found = [f"{url} (HTTP {status}): {', '.join(_leaks(text))}" for url, status, text in responses if _leaks(text)]
    for name, text in (("stderr log", exporter.log_text()), ("stdout", exporter.stdout_text())):
        if _leaks(text):
            found.append(f"exporter {name}: {', '.join(_leaks(text))}")
    assert not found, f"{what}: secrets leaked:\n  " + "\n  ".join(found)


def test_every_fault_kind_is_covered() -> None:
    """A fault kind added to the simulator must be added here too, or its error path goes untested."""
    assert set(FAULT_VALUES) == set(FAULT_NAMES)


def test_needles_are_real() -> None:
    """The secret list comes from the demo config; an empty or wrong parse would pass everything."""
    needles = _needles()
    assert "sim-shopee-partner-key-0001" in needles and "Atzr%7Csim-refresh-us-main" in needles
    assert _leaks("x Atzr|sim-refresh-us-main y") and not _leaks("nothing secret here")


async def test_no_fault(sim: DemoExporter) -> None:
    """Healthy answers, including a fresh LWA token exchange traced with debug=true."""
    check_ids = sim.check_ids()
    assert AMAZON_CHECK in check_ids and len(check_ids) >= 5, check_ids
    responses = await _fetch_all(sim, [f"{sim.url}/probe", *_probe_urls(sim, check_ids)])
    responses += await _token_exchange_probes(sim)
    responses += await _fetch_all(sim, [f"{sim.url}/", f"{sim.url}/metrics"])
    _assert_clean(sim, responses, "no fault")


#: throttle last: its back-off (up to 16 intervals) would hold us-main's probes in the rounds after it
@pytest.mark.parametrize("fault", sorted(FAULT_VALUES, key=lambda fault: (fault == "throttle", fault)))
async def test_fault(sim: DemoExporter, fault: str) -> None:
    value = FAULT_VALUES[fault]
    extra: dict[str, Any] = {} if value is None else {"value": value}
    check_ids = sim.check_ids()

    # 1. the fault on every request of each marketplace in turn (Amazon: the API call, with the
    # token cached). One marketplace at a time: all demo checks share the simulator's host and
    # its 4 per-host probe slots, so with everything hanging at once some would never be sent.
    responses = await _fetch_all(sim, [f"{sim.url}/probe"])
    for marketplace in sorted({check_id.split("/")[0] for check_id in check_ids}):
        fault_id = sim.inject_fault(marketplace, fault, **extra)["id"]
        mine = [check_id for check_id in check_ids if check_id.startswith(f"{marketplace}/")]
        answers = await _fetch_all(sim, _probe_urls(sim, mine))
        responses += answers
        # a check the platform paused is rightly not probed, on demand either (Ozon pauses an
        # account for 10 minutes after an auth failure: the http_status 401 round)
        held = all("Retry-After" in text for url, _, text in answers if url.endswith("debug=true"))
        assert held or await _wait_applied(sim, fault_id) > 0, f"{fault}: no probe of {marketplace} reached the fault"
        sim.clear_faults()

    # 2. the fault on Amazon's token exchange (LWA), where the client secret and refresh token travel
    responses += await _token_exchange_probes(sim, fault, extra)

    # 3. the pages that show what the faulted probes recorded (messages, codes)
    responses += await _fetch_all(sim, [f"{sim.url}/", f"{sim.url}/metrics"])
    sim.clear_faults()
    _assert_clean(sim, responses, f"fault {fault}")


async def _token_exchange_probes(exporter: DemoExporter, fault: str | None = None,
                                 extra: dict[str, Any] | None = None) -> list[tuple[str, int, str]]:
    """Make the exporter drop us-main's access token after every probe (token_expired on the API
    call), then take a fresh trace, which exchanges the refresh token again — under ``fault`` on
    LWA, if given.

    The LWA fault goes in only once the background has met token_expired (so no token is cached and
    the check is not backing off), right before the trace is asked for: a throttled exchange backs
    the check off and on-demand probes rightly wait behind that, so a throttle injected earlier
    would be met by background probes only, never traced. A background probe slipping in between
    (one interval apart) just costs another attempt."""
    url = f"{exporter.url}/probe?check={AMAZON_CHECK}&debug=true"
    responses: list[tuple[str, int, str]] = []
    for _attempt in range(3):
        exporter.clear_faults()
        expired = exporter.inject_fault("amazon_sp", "token_expired", account="us-main",
                                        check="marketplace_participations")["id"]
        # met by the next background probe: after a throttled round's back-off, 16 intervals at most
        assert await _wait_applied(exporter, expired, HOLD_WAIT_S) > 0, "no probe of us-main met token_expired"
        if fault is not None:
            exporter.inject_fault("amazon_sp", fault, account="us-main", check="token", **(extra or {}))
        responses += await _fetch_all(exporter, [url], fresh=True)
        if any("/amazon/lwa" in text for _, _, text in responses):
            break
    else:
        pytest.fail(f"no LWA token exchange was traced:\n{responses}")
    exporter.clear_faults()
    responses += await _fetch_all(exporter, [f"{exporter.url}/probe?check={AMAZON_CHECK}"])
    return responses
