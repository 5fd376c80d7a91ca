"""The generated Grafana dashboards: committed JSON is fresh, and every query is real PromQL about real
metrics on the ``${datasource}`` variable.

There is no Grafana server to import into (bench-anchors.md), so this checks what can be checked
offline: regeneration matches the committed files byte for byte, every dashboard validates against
the JSON Schema derived from ``@grafana/schema`` (``dashboards/schema/``, no additional properties),
every panel's options against its plugin's derived schema, every metric a query names is in the
catalogue (or an explicit allow-list of Prometheus' own series and our recording rules), promtool
parses every expression (as a recording rule: promtool has no plain PromQL check), every
panel/target/variable/annotation uses the datasource variable, and uids are stable. Whether every
query returns data is tests/stack/test_dashboards_live.py (a real Prometheus).

grafanalib is imported only through ``dashboards/generate.py`` inside the tests (dev dependency).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import require_binary

from marketplace_exporter import catalogue as cat

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
SCHEMAS = DASHBOARDS / "schema"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: the uid each dashboard must keep forever (links and bookmarks point at it)
EXPECTED_UIDS = {name: f"mpx-{name}" for name in ("overview", "credentials", "marketplace", "deploys", "exporter")}
#: series a query may name that are not in the catalogue: Prometheus' own (per scrape target and
#: firing alerts) and the SLO recording rules alert-rules/ writes from catalogue.slo_error_ratio_rule
PROMETHEUS_NAMES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
NON_CATALOGUE_NAMES = PROMETHEUS_NAMES | {cat.slo_error_ratio_rule(window) for window in cat.SLO_WINDOWS}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
#: what is not a metric name in PromQL: label matchers, grouping label lists, ranges/durations
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "Inf", "NaN", "atan2"}
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
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]


def metric_names(expr: str) -> set[str]:
    """Every series name a PromQL expression selects (strings, matchers, label lists, ranges removed)."""
    expr = _STRING.sub('""', expr)
    expr = _GROUPING.sub(" ", _MATCHERS.sub(" ", _RANGE.sub(" ", expr)))
    expr = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", " ", expr)
    return {name for name in _IDENT.findall(expr) if name not in _KEYWORDS}


def test_metric_names_finds_selectors_not_labels_functions_or_keywords() -> None:
    expr = ('sum by (marketplace, site) (rate(marketplace_probes_total{site=~"$site", code="x y"}[5m])) '
            '/ on (marketplace) group_left(version) max(marketplace:probe_error_ratio:rate1h) > 0.5 '
            'and ALERTS{alertstate="firing"} or vector(0) or up offset 1h')
    assert metric_names(expr) == {"marketplace_probes_total", "marketplace:probe_error_ratio:rate1h", "ALERTS",
                                  "up"}


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
        for annotation in d["annotations"]["list"]:
            if not annotation.get("builtIn"):
                assert annotation["datasource"] == DATASOURCE, f"{name}: annotation {annotation['name']!r}"


def test_import_input_sets_the_datasource_variable() -> None:
    """Grafana's Import asks for one Prometheus and writes it into the ``datasource`` variable."""
    for name, d in _committed().items():
        assert [(i["name"], i["type"], i["pluginId"]) for i in d["__inputs"]] == [
            ("DS_PROMETHEUS", "datasource", "prometheus")], name
        datasource = next(v for v in d["templating"]["list"] if v["name"] == "datasource")
        assert datasource["current"]["value"] == "${DS_PROMETHEUS}", name
        # the input is used only there: panels and queries go through the variable
        assert json.dumps(d).count("${DS_PROMETHEUS}") == 2, f"{name}: DS_PROMETHEUS used outside the variable"
        required = {(r["type"], r["id"]) for r in d["__requires"]}
        assert {("datasource", "prometheus")} | {("panel", p["type"]) for p in _panels(d)} <= required, name


def test_every_dashboard_has_the_deploy_annotation_and_links_keeping_variables() -> None:
    for name, d in _committed().items():
        deploys = [a for a in d["annotations"]["list"] if a["name"].endswith("Deploys")]
        assert len(deploys) == 1 and deploys[0]["enable"], name
        assert cat.DEPLOY_TIMESTAMP.name in deploys[0]["expr"] and deploys[0]["useValueForTime"], name
        assert set(deploys[0]["tagKeys"].split(",")) == {cat.SERVICE, cat.ENVIRONMENT, cat.STATUS}, name
        links = d["links"]
        assert links and all(link["includeVars"] and link["keepTime"] for link in links), name


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
    allowed = _allowed_metric_names() | NON_CATALOGUE_NAMES
    seen = set()
    for name, d in _committed().items():
        for where, expr in _exprs(d):
            names = metric_names(expr)
            assert names, f"{name}: {where} names no metric: {expr}"
            assert names <= allowed, f"{name}: {where} names unknown metrics {sorted(names - allowed)}"
            seen |= names
    # every metric the project emits is charted somewhere (histograms through their buckets)
    for spec in cat.ALL:
        charted = spec.name + "_bucket" if spec.kind == "histogram" else spec.name
        assert charted in seen, f"{spec.name} is on no dashboard"
    assert PROMETHEUS_NAMES <= seen, f"allow-list entries no dashboard uses: {PROMETHEUS_NAMES - seen}"


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


# --- structural validation against the schema derived from @grafana/schema ---------------------------


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def _dashboard_validator() -> jsonschema.Draft7Validator:
    schema = _schema("dashboard.schema.json")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))]


def test_every_dashboard_validates_against_the_grafana_dashboard_schema() -> None:
    validator = _dashboard_validator()
    for name, d in _committed().items():
        assert _errors(validator, d) == [], f"dashboards/{name}.json"


def test_every_panel_validates_against_its_plugin_schema() -> None:
    """options and fieldConfig.defaults.custom per panel type; a type without a derived schema fails."""
    for name, d in _committed().items():
        for panel in _panels(d):
            path = SCHEMAS / f"panel-{panel['type']}.schema.json"
            assert path.exists(), f"{name}: panel type {panel['type']!r} has no derived schema (add it to derive.mjs)"
            schema = _schema(path.name)
            where = f"{name}: panel {panel['title']!r}"
            assert _errors(jsonschema.Draft7Validator(schema["options"]), panel["options"]) == [], where
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            assert _errors(jsonschema.Draft7Validator(schema["fieldConfig"]), custom) == [], where


def _broken(mutate: Any) -> dict[str, Any]:
    d = json.loads((DASHBOARDS / "overview.json").read_text(encoding="utf-8"))
    mutate(d)
    return d


@pytest.mark.parametrize("what, mutate", [
    ("a legacy grafanalib key", lambda d: d.update(rows=[])),
    ("a misspelt panel key", lambda d: d["panels"][0].update(datasorce=DATASOURCE)),
    ("a grid position as text", lambda d: d["panels"][0]["gridPos"].update(w="12")),
    ("a threshold step colour missing", lambda d: d["panels"][0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
     [0].pop("color")),
    ("no schemaVersion", lambda d: d.pop("schemaVersion")),
    ("a variable refresh outside the enum", lambda d: d["templating"]["list"][0].update(refresh=7)),
    ("a graphTooltip outside the enum", lambda d: d.update(graphTooltip=5)),
    ("an import input of another kind", lambda d: d["__inputs"][0].update(type="constant")),
])
def test_the_schema_rejects_a_broken_dashboard(what: str, mutate: Any) -> None:
    """The validation above is not vacuous: each of these breaks the committed Overview JSON."""
    assert _errors(_dashboard_validator(), _broken(mutate)), f"{what} was accepted"


def test_the_panel_schemas_reject_broken_options() -> None:
    timeseries = _schema("panel-timeseries.schema.json")
    assert _errors(jsonschema.Draft7Validator(timeseries["options"]), {
        "legend": {"displayMode": "sideways", "placement": "right", "showLegend": True, "calcs": []},
        "tooltip": {"mode": "multi", "sort": "none"}})
    table = _schema("panel-table.schema.json")
    assert _errors(jsonschema.Draft7Validator(table["fieldConfig"]), {
        "cellOptions": {"type": "no-such-cell"}, "inspect": False})


def test_the_derived_schemas_record_the_locked_package_versions() -> None:
    """dashboards/schema/*.json came from the versions package-lock.json pins (re-derive: make dashboard-schema)."""
    lock = json.loads((SCHEMAS / "package-lock.json").read_text(encoding="utf-8"))["packages"]
    package = json.loads((SCHEMAS / "package.json").read_text(encoding="utf-8"))
    for dependency, pinned in package["devDependencies"].items():
        assert lock[f"node_modules/{dependency}"]["version"] == pinned, dependency
    source = (f"@grafana/schema {package['devDependencies']['@grafana/schema']}, ts-json-schema-generator "
              f"{package['devDependencies']['ts-json-schema-generator']}")
    for path in sorted(SCHEMAS.glob("*.schema.json")):
        assert source in _schema(path.name)["$comment"], path.name


def _module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_burn_rate_panel_uses_the_alert_rules_slo_objective() -> None:
    """The Overview's burn rate and the burn-rate alerts divide by the same error budget."""
    from marketplace_exporter.mixin.config import AlertConfig

    objective = AlertConfig().slo_objective
    lib = _module(DASHBOARDS / "lib.py", "dashboards_lib")
    assert lib.SLO_OBJECTIVE == objective
    burn = next(p for p in _panels(_committed()["overview"]) if "SLO error-budget burn" in p["title"])
    assert all(t["expr"].endswith(f"/ {1 - objective:g}") for t in burn["targets"]), burn["targets"]


_LINK_VAR = re.compile(r"var-(\w+)=")


def test_drill_down_links_open_a_dashboard_of_ours_with_its_own_variables() -> None:
    dashboards = _committed()
    by_uid = {d["uid"]: d for d in dashboards.values()}
    links = 0
    for name, d in dashboards.items():
        for panel in _panels(d):
            for link in panel["fieldConfig"]["defaults"].get("links", []):
                links += 1
                match = re.match(r"^/d/([\w-]+)/\?", link["url"])
                assert match and match.group(1) in by_uid, f"{name}: {panel['title']!r} links to {link['url']}"
                variables = {v["name"] for v in by_uid[match.group(1)]["templating"]["list"]}
                assert set(_LINK_VAR.findall(link["url"])) <= variables, f"{name}: {panel['title']!r}"
                assert "${__url_time_range}" in link["url"] and "var-datasource=${datasource}" in link["url"]
    assert links >= 3


#: Grafana's grid on a 1920-px-wide screen: 24 columns of about 78 px; a panel header keeps about
#: 40 px for its padding and the description and menu icons. The title font (Inter, 14 px) takes
#: about 7.2 px per Latin character, 3.6 per space and 14 per Chinese character.
COLUMN_PX, HEADER_PX = 78, 40


def title_px(title: str) -> float:
    return sum(14 if unicodedata.east_asian_width(ch) in "WF" else 3.6 if ch == " " else 7.2 for ch in title)


def _has_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_title_is_chinese_then_english_and_fits_its_panel_and_descriptions_are_bilingual() -> None:
    titles = _module(DASHBOARDS / "zh.py", "dashboards_zh")
    for name, d in _committed().items():
        english, _, chinese = d["title"].rpartition(titles.SEPARATOR)
        assert english.startswith("Marketplace exporter / ") and _has_chinese(chinese), d["title"]
        for panel in _panels(d):
            zh, sep, en = panel["title"].partition(titles.SEPARATOR)
            assert sep and _has_chinese(zh) and not _has_chinese(en), f"{name}: {panel['title']!r} is not zh · en"
            assert titles.PANELS[en] == zh
            room = panel["gridPos"]["w"] * COLUMN_PX - HEADER_PX
            assert title_px(panel["title"]) <= room, (
                f"{name}: {panel['title']!r} needs ~{title_px(panel['title']):.0f} px, the panel {room}: shorten it")
        for variable in d["templating"]["list"]:
            assert _has_chinese(variable["label"]) and titles.SEPARATOR in variable["label"], variable["label"]
        for panel in _panels(d):
            if panel.get("description"):
                chinese_text, _, english_text = panel["description"].partition("\n\n")
                assert _has_chinese(chinese_text) and english_text and not _has_chinese(english_text), panel["title"]


def test_a_title_without_chinese_or_an_edited_description_stops_the_generation() -> None:
    titles = _module(DASHBOARDS / "zh.py", "dashboards_zh")
    def model(panel_title: str) -> dict[str, Any]:
        return {"title": "Marketplace exporter / Overview", "panels": [{"title": panel_title}],
                "templating": {"list": []}, "annotations": {"list": []}}

    with pytest.raises(SystemExit, match="no Chinese for the panel title 'A panel nobody translated'"):
        titles.translate(model("A panel nobody translated"))
    described = model("Probe success ratio")
    described["panels"][0]["description"] = "Share of probes that succeeded over the chosen time range."
    with pytest.raises(SystemExit, match="the English description of 'Probe success ratio' changed"):
        titles.translate(described)
    translated = titles.translate(model("Probe success"))
    assert translated["panels"][0]["title"] == "探测成功 · Probe success"
    assert translated["title"] == "Marketplace exporter / Overview · 总览"
