"""Integration fixtures: ``stack`` = simulator + exporter in this process (see stacklib.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from stacklib import Stack, start_stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async for running in start_stack():
        yield running
