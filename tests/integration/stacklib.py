"""Shared by the integration tests: an in-process simulator + exporter ("stack") and helpers that
read /metrics the way Prometheus would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from marketplace_exporter.cli import DEMO_SIMULATOR, demo_config_path
from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.simulator import create_simulator_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Stack:
    exporter: str
    simulator: str
    session: aiohttp.ClientSession

    async def samples(self) -> Samples:
        async with self.session.get(f"{self.exporter}/metrics") as response:
            text = await response.text()
        out: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

    async def fault(self, **body: object) -> None:
        async with self.session.post(f"{self.simulator}/__sim/faults", json=body) as response:
            assert response.status == 201, await response.text()

    async def wait_for(self, predicate: Callable[[Samples], bool], seconds: float = 8.0) -> Samples:
        deadline = time.monotonic() + seconds
        while True:
            samples = await self.samples()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in /metrics within "
                                     f"{seconds}s; last samples:\n" + _dump(samples))
            await asyncio.sleep(0.1)


def _dump(samples: Samples) -> str:
    return "\n".join(f"{name}{dict(labels)} {value}" for (name, labels), value in sorted(
        samples.items(), key=lambda item: item[0][0]) if name.startswith("marketplace_probe_"))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels`` (None if there is none). Several
    matches are a test bug, not a pick: aliases repeat across marketplaces (``us-main`` is six
    accounts), and the first match would depend on the exposition's order."""
    want = set(labels.items())
    found = [(sample_labels, sample_value) for (sample_name, sample_labels), sample_value in samples.items()
             if sample_name == name and want <= sample_labels]
    if len(found) > 1:
        raise AssertionError(f"{name}{labels} matches {len(found)} series: name more labels "
                             f"(e.g. marketplace=): {sorted(dict(found_labels) for found_labels, _ in found)[:3]}")
    return found[0][1] if found else None


def fast(text: str, sim_url: str) -> str:
    """The demo config, pointed at this test's simulator and sped up."""
    return (text.replace(DEMO_SIMULATOR, sim_url).replace("interval: 5s", "interval: 400ms")
            .replace("timeout: 3s", "timeout: 350ms"))


@pytest.fixture(name="stack")
async def stack_fixture() -> AsyncIterator[Stack]:
    """Simulator and exporter on port 0 with the demo config, sped up. Import ``stack_fixture``
    into a test module to use the ``stack`` fixture there."""
    simulator = TestServer(create_simulator_app(), host="127.0.0.1")
    await simulator.start_server()
    sim_url = f"http://127.0.0.1:{simulator.port}"
    source = ConfigSource(demo_config_path(), transform=lambda text: fast(text, sim_url))
    exporter = TestServer(create_app(source, source.load()), host="127.0.0.1")
    await exporter.start_server()
    async with aiohttp.ClientSession() as session:
        yield Stack(f"http://127.0.0.1:{exporter.port}", sim_url, session)
    await exporter.close()
    await simulator.close()
