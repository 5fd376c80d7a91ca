"""Shared by the simulator end-to-end tests (test_sim_*.py): the simulator on 127.0.0.1 (port 0),
the REAL engine running a config text against it, ``probe_now``, fault injection and request counts
through the simulator's ``/__sim`` control API, and an injected clock for raw-HTTP tests.

A plain module (not a conftest): import it as ``from sim_harness import ...``. For a whole exporter
with ``/metrics`` see stacklib.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from marketplace_exporter.catalogue import Reason
from marketplace_exporter.config import load_config
from marketplace_exporter.engine import Engine, QuotaWait
from marketplace_exporter.engine.transport import new_session
from marketplace_exporter.simulator import create_simulator_app
from marketplace_exporter.store import ProbeRecord, Store

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]


class LateStart(random.Random):
    """Puts every scheduled first run at the far end of its window (interval 1 h, jitter 0.1:
    361 s), so only ``probe_now`` sends anything during a test."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeClock:
    """The simulator's clock, set by hand: ``clock.now = ...``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def simulator_client(aiohttp_client: ClientFactory, clock: Callable[[], float]) -> Client:
    """The simulator app on ``clock``, behind pytest-aiohttp's test client (raw HTTP tests)."""
    return await aiohttp_client(create_simulator_app(clock=clock))


#: the start time of the ``clock`` fixture
T0 = 1_750_000_000.0


@pytest.fixture(name="clock")
def clock_fixture() -> FakeClock:
    """A simulator clock at :data:`T0`. Import ``clock_fixture`` to use the ``clock`` fixture."""
    return FakeClock(T0)


@pytest.fixture(name="raw")
async def raw_fixture(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    """The simulator on the ``clock`` fixture behind a test client. Import ``raw_fixture`` (and
    ``clock_fixture``) to use the ``raw`` fixture."""
    return await simulator_client(aiohttp_client, clock)


@asynccontextmanager
async def serve_simulator(clock: Callable[[], float] | None = None) -> AsyncIterator[tuple[str, web.Application]]:
    """The simulator on 127.0.0.1, port 0: yields its base URL and its app."""
    app = create_simulator_app() if clock is None else create_simulator_app(clock=clock)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}", app
    finally:
        await server.close()


@pytest.fixture(name="sim")
async def sim_url_fixture() -> AsyncIterator[str]:
    """The simulator's base URL. Import ``sim_url_fixture`` into a test module to use the ``sim``
    fixture there."""
    async with serve_simulator() as (url, _):
        yield url


@asynccontextmanager
async def running(text: str, path: str | Path, *, rng: random.Random | None = None,
                  session: aiohttp.ClientSession | None = None) -> AsyncIterator[Engine]:
    """An engine running the config ``text`` (loaded as if from ``path``); stopped on exit. Its
    probes go through ``session``, or a new probe session (``new_session``) when none is given."""
    async with AsyncExitStack() as stack:
        if session is None:
            session = await stack.enter_async_context(new_session(limit=16))
        engine = Engine(session, Store()) if rng is None else Engine(session, Store(), rng=rng)
        engine.apply(load_config(path, text=text))
        try:
            yield engine
        finally:
            await engine.stop()


async def probe(engine: Engine, check_id: str, *, debug: bool = False) -> ProbeRecord:
    """``probe_now`` that must produce a record (not skipped, not waiting for quota)."""
    record = await engine.probe_now(check_id, debug=True) if debug else await engine.probe_now(check_id)
    assert record is not None and not isinstance(record, QuotaWait), record
    return record


#: (fault, value, reason, raw code, exported code label): the transport faults, alike on every platform
FaultCase = tuple[str, int | None, Reason, str | None, str | None]
TRANSPORT_FAULTS: list[FaultCase] = [
    ("malformed_body", None, Reason.INVALID_RESPONSE, None, None),
    ("huge_body", 3, Reason.INVALID_RESPONSE, None, None),
    ("hang", None, Reason.TIMEOUT, None, None),
    ("reset", None, Reason.CONNECT, None, None),
]


def fault_ids(cases: list[FaultCase]) -> list[str]:
    return [f"{fault}{value or ''}" for fault, value, *_ in cases]


async def fault_round_trip(engine: Engine, sim: str, check_id: str, fault: dict[str, object],
                           expected: tuple[Reason, str | None, str | None], unaffected: tuple[str, ...]) -> None:
    """Healthy, then with ``fault`` injected ``check_id`` fails as ``expected`` (reason, raw code, code
    label) while the ``unaffected`` checks stay healthy, then healthy again once it is cleared."""
    assert (await probe(engine, check_id)).outcome.success
    await sim_json("POST", f"{sim}/__sim/faults", json=fault)
    record = await probe(engine, check_id)
    outcome = record.outcome
    assert (outcome.success, outcome.reason, outcome.code, record.code_label) == (False, *expected)
    for other in unaffected:
        assert (await probe(engine, other)).outcome.success, other
    await sim_json("DELETE", f"{sim}/__sim/faults")
    assert (await probe(engine, check_id)).outcome.success


async def probes_until(engine: Engine, check_id: str, probes: int, reason: Reason | None = None,
                       timeout: float = 10.0) -> None:
    """Wait (scheduled probing) until ``check_id`` has run ``probes`` times, with at least one
    ``reason`` failure if one is given; fail the test if that takes longer than ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = engine.store.status(check_id)
        if state is not None and state.probes >= probes and (reason is None or state.failures[reason] >= 1):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{check_id}: not {probes} probes{f' with a {reason} failure' if reason else ''} "
                         f"within {timeout} s")


async def sim_json(method: str, url: str, **kwargs: Any) -> Any:
    """One request on a fresh session; it must answer 200 or 201 with JSON."""
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


@dataclass
class SimStack:
    """An engine against a simulator, and a session for the simulator's control API."""

    sim_url: str
    session: aiohttp.ClientSession
    engine: Engine
    debug: bool = False  # probe with a debug trace

    async def probe(self, check_id: str) -> ProbeRecord:
        return await probe(self.engine, check_id, debug=self.debug)

    async def fault(self, **body: object) -> None:
        async with self.session.post(f"{self.sim_url}/__sim/faults", json=body) as response:
            assert response.status == 201, await response.text()

    async def clear(self) -> None:
        async with self.session.delete(f"{self.sim_url}/__sim/faults") as response:
            assert response.status == 200

    async def requests(self) -> dict[str, Any]:
        async with self.session.get(f"{self.sim_url}/__sim/requests") as response:
            return cast(dict[str, Any], await response.json())


@asynccontextmanager
async def sim_stack(config: Callable[[str], str], path: str | Path, *, clock: Callable[[], float] | None = None,
                    rng: random.Random | None = None, debug: bool = False,
                    own_probe_session: bool = False) -> AsyncIterator[SimStack]:
    """Simulator, then an engine running ``config(sim_url)``. The engine probes through the control
    session, or through its own probe session (``new_session``) with ``own_probe_session``."""
    async with serve_simulator(clock) as (sim_url, _), aiohttp.ClientSession() as control:
        async with running(config(sim_url), path, rng=rng, session=None if own_probe_session else control) as engine:
            yield SimStack(sim_url, control, engine, debug)
