"""The marketplace simulator: fake Amazon SP-API/LWA, Shopee and generic HTTP targets with fault
injection, so the demo and every test run with no credentials and no internet.

``create_simulator_app()`` returns the aiohttp app (serve it on port 9763 by default);
``SIM_ACCOUNTS`` holds the identities it accepts. See ``docs/simulator.md``.
"""

from __future__ import annotations

from marketplace_exporter.simulator.accounts import SIM_ACCOUNTS, SimAccounts
from marketplace_exporter.simulator.app import DEFAULT_PORT, create_simulator_app

__all__ = ["DEFAULT_PORT", "SIM_ACCOUNTS", "SimAccounts", "create_simulator_app"]
