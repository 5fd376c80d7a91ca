"""Pipeline steps (`deploy mark`, `verify`, `deploys list`) run the CLI once per step, often several
times per deploy: building the command line must not import the server, the config loader with every
adapter, or pydantic. This pins the import graph, not a time (timing belongs in bench/)."""

from __future__ import annotations

import json
import subprocess
import sys

#: modules a client command has no use for; each costs 0.1-0.5 s to import on a small CI runner
HEAVY = ("aiohttp", "pydantic", "prometheus_client", "marketplace_exporter.config.load",
         "marketplace_exporter.server.app", "marketplace_exporter.adapters", "yaml")


def _modules_loaded_by(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_building_the_command_line_loads_no_server_or_config_code() -> None:
    loaded = _modules_loaded_by("from marketplace_exporter.cli import _parser\n_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_check_the_import_test_relies_on_does_see_a_heavy_import() -> None:
    loaded = _modules_loaded_by("import marketplace_exporter.config.load")
    assert {"pydantic", "marketplace_exporter.adapters"} <= loaded
