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


def test_output_piped_into_a_reader_that_closes_early_is_not_a_traceback() -> None:
    """`alerts history --format=json | head` must end quietly, not with a BrokenPipeError."""
    from marketplace_exporter.config import json_schema

    # more than a Linux pipe buffer (64 KiB), so the writer really meets the closed pipe
    assert len(json.dumps(json_schema(), indent=2)) > 65536
    script = "import sys\nfrom marketplace_exporter.cli import main\nsys.exit(main(['config-schema']))"
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as producer:
        assert producer.stdout is not None and producer.stderr is not None
        producer.stdout.read(10)  # like `head -c 10`
        producer.stdout.close()
        stderr = producer.stderr.read().decode()
        assert producer.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
