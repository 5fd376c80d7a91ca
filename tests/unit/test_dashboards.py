"""The generated Grafana dashboards: committed JSON is fresh, and every query is real PromQL about real
metrics on the ``${datasource}`` variable.

There is no Grafana server to import into (bench-anchors.md), so this checks what can be checked
offline: regeneration matches the committed files byte for byte, every metric a query names is in
the catalogue, promtool parses every expression (as a recording rule: promtool has no plain
PromQL check), every panel/target/variable uses the datasource variable, and uids are stable.
Structural validation against @grafana/schema is not done here yet.

grafanalib is imported only through ``dashboards/generate.py`` inside the tests (dev dependency).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from conftest import require_binary

from marketplace_exporter import catalogue as cat

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: the uid each dashboard must keep forever (links and bookmarks point at it)
EXPECTED_UIDS = {"overview": "mpx-overview", "credentials": "mpx-credentials", "marketplace": "mpx-marketplace"}

_METRIC = re.compile(r"\bmarketplace_[A-Za-z0-9_]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$", re.S)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def _panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from _panels(panel)


def _exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, PromQL)`` for every panel target and query variable (``label_values(sel, l)`` → ``sel``)."""
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} target {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        match = _LABEL_VALUES.match(query)
        yield f"variable {variable['name']!r}", match.group("selector") if match else query


def _allowed_metric_names() -> set[str]:
    names = set()
    for spec in cat.ALL:
        names.add(spec.name)
        if spec.kind == "histogram":
            names.update(spec.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def _concrete(expr: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts: durations and match-all regexes."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
    return expr


def test_committed_json_matches_a_fresh_generation(tmp_path: Path) -> None:
    generator = _generator()
    rendered = generator.generate(out_dir=tmp_path)
    assert {path.name for path in rendered} == {f"{name}.json" for name in _committed()}, (
        "every *.dashboard.py has a committed JSON and every JSON has a source")
    for path, text in rendered.items():
        path.write_text(text, encoding="utf-8")
        committed = (DASHBOARDS / path.name).read_text(encoding="utf-8")
        assert committed == path.read_text(encoding="utf-8"), (
            f"dashboards/{path.name} is stale: run `python dashboards/generate.py`")
    # deterministic: a second run renders the same bytes
    assert generator.generate(out_dir=tmp_path) == rendered


def test_generate_check_flags_stale_missing_and_orphan_files(tmp_path: Path) -> None:
    generator = _generator()
    for source in [*generator.sources(), DASHBOARDS / "lib.py"]:
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    assert generator.main(["--check"], directory=tmp_path) == 1, "missing JSON must fail --check"
    assert generator.main([], directory=tmp_path) == 0
    assert generator.main(["--check"], directory=tmp_path) == 0
    (tmp_path / "overview.json").write_text("{}\n", encoding="utf-8")
    assert generator.main(["--check"], directory=tmp_path) == 1, "stale JSON must fail --check"
    assert generator.main([], directory=tmp_path) == 0
    (tmp_path / "gone.json").write_text("{}\n", encoding="utf-8")
    assert generator.main(["--check"], directory=tmp_path) == 1, "JSON without a source must fail --check"


def test_uids_are_stable_and_unique_and_descriptions_say_generated() -> None:
    dashboards = _committed()
    assert {name: d["uid"] for name, d in dashboards.items()} == EXPECTED_UIDS
    assert len({d["uid"] for d in dashboards.values()}) == len(dashboards)
    for name, d in dashboards.items():
        assert d["description"] == "generated by dashboards/generate.py — edit the .py", name
        ids = [panel["id"] for panel in _panels(d)]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"


def test_every_panel_target_and_variable_uses_the_datasource_variable() -> None:
    for name, d in _committed().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", name
        assert variables["datasource"]["query"] == "prometheus", name
        for panel in _panels(d):
            assert panel["datasource"] == DATASOURCE, f"{name}: panel {panel['title']!r}"
            assert panel["targets"], f"{name}: panel {panel['title']!r} has no query"
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, f"{name}: panel {panel['title']!r}"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == DATASOURCE, f"{name}: variable {variable['name']!r}"
            assert variable["current"].get("value") not in (None, ""), f"{name}: {variable['name']!r} has no default"


def test_marketplace_drill_down_has_the_probe_variables_with_all() -> None:
    variables = {v["name"]: v for v in _committed()["marketplace"]["templating"]["list"]}
    assert list(variables) == ["datasource", *cat.PROBE_LABELS]
    for label in cat.PROBE_LABELS:
        assert variables[label]["includeAll"] and variables[label]["multi"], label
        assert variables[label]["query"].startswith(f"label_values({cat.PROBE_SUCCESS.name}"), label


def test_every_stat_and_table_has_explicit_thresholds() -> None:
    for name, d in _committed().items():
        for panel in _panels(d):
            if panel["type"] in ("stat", "table"):
                steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
                assert steps and steps[0]["value"] is None, f"{name}: panel {panel['title']!r}"


def test_every_metric_a_query_names_is_in_the_catalogue() -> None:
    allowed = _allowed_metric_names()
    seen = set()
    for name, d in _committed().items():
        for where, expr in _exprs(d):
            names = set(_METRIC.findall(_STRING.sub('""', expr)))
            assert names, f"{name}: {where} names no catalogue metric: {expr}"
            assert names <= allowed, f"{name}: {where} names unknown metrics {sorted(names - allowed)}"
            seen |= names
    # the brief's core metrics are all charted somewhere
    for spec in (cat.PROBE_SUCCESS, cat.PROBE_FAILURES, cat.API_ERRORS, cat.PROBE_REQUESTS, cat.PROBE_SKIPPED,
                 cat.RATE_LIMIT_REMAINING, cat.RATE_LIMIT_REMAINING_COUNT, cat.CREDENTIAL_EXPIRY,
                 cat.TLS_CERT_EXPIRY, cat.API_DEPRECATION):
        assert spec.name in seen, spec.name
    assert cat.REQUEST_DURATION.name + "_bucket" in seen


def test_every_expression_passes_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = []
    for name, d in _committed().items():
        for i, (where, expr) in enumerate(_exprs(d)):
            rules.append({"record": f"dashboard:{name}:expr_{i}", "expr": _concrete(expr),
                          "labels": {"where": where}})
    assert len(rules) > 20
    path = tmp_path / "dashboard_exprs.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout, result.stdout


def test_promtool_check_catches_a_broken_expression(tmp_path: Path) -> None:
    """The promtool check above is not vacuous: a syntax error fails it."""
    promtool = require_binary("promtool")
    path = tmp_path / "broken.rules.yml"
    expr = _concrete('sum by (site (marketplace_probe_success{site=~"$site"})')
    broken = {"record": "dashboard:broken", "expr": expr}
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [broken]}]}), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result.stdout
