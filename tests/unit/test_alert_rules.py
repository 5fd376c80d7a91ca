"""The generated alert rules: complete, named from the catalogue, split by who acts, linked to
runbooks, and accepted and unit-tested by promtool (``alert-rules/tests/*.test.yml``). Freshness,
the CLI and the config loader: tests/unit/test_mixin_cli.py."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import require_binary

from marketplace_exporter import catalogue
from marketplace_exporter.mixin import generate as generator
from marketplace_exporter.mixin.config import ACCOUNT_REASONS, PLATFORM_REASONS, AlertConfig
from marketplace_exporter.mixin.promql import num
from marketplace_exporter.mixin.rules_account import PLATFORM_INHIBITS
from marketplace_exporter.mixin.rules_latency import baseline_rule, p95_rule

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "alert-rules"
RULES = RULES_DIR / "marketplace-alerts.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
SEVERITIES = {"critical", "warning", "info"}
COMPONENTS = {"probe", "credential", "platform", "slo", "exporter", "bridge", "deploy", "meta"}
ANNOTATIONS = ("summary", "description", "summary_zh", "description_zh", "runbook_url")
#: PromQL words that look like metric names but are functions, keywords or template-free literals
PROMQL_WORDS = {
    "and", "or", "unless", "on", "ignoring", "by", "without", "group_left", "group_right", "bool",
    "time", "increase", "rate", "sum", "max", "min", "count", "avg", "offset", "absent",
    "clamp_min", "label_replace", "vector", "max_over_time", "quantile_over_time", "histogram_quantile",
    "count_values",
}
#: series that are not exporter metrics: Prometheus' scrape health of a target and its alerts
EXTERNAL_SERIES = {"up", "ALERTS"}


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "record" in rule]


def _catalogue_names() -> set[str]:
    names: set[str] = set()
    for spec in catalogue.ALL:
        names.add(spec.name)
        if spec.kind == "histogram":
            names.update(f"{spec.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def _metric_names(expr: str) -> set[str]:
    text = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    text = re.sub(r'"[^"]*"', " ", text)  # string literals (label_replace arguments)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(?:on|ignoring|by|without|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", text))
    return {w for w in words if w not in PROMQL_WORDS}


def _runbook_anchors() -> set[str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    anchors.update(re.sub(r"[^a-z0-9_-]", "", h.strip().lower().replace(" ", "-"))
                   for h in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE))
    return anchors


def test_numbers_carry_no_float_noise() -> None:
    assert num(0.1) == "0.1"
    assert num(604800) == "604800"
    assert num(0.1 * 100) == "10"
    assert not re.search(r"\d\.\d*0000\d|\d\.\d*9999\d|e[+-]\d", RULES.read_text(encoding="utf-8"))


def test_the_parser_finds_metric_names() -> None:
    expr = ('label_replace(increase(marketplace_probes_total{job="x", reason=~"a|b"}[5m]) > 0 '
            'and on (check, site) up == 0, "signal", "probes", "", "") * on () group_right () x:y:z')
    assert _metric_names(expr) == {"marketplace_probes_total", "up", "x:y:z"}


def _rule_id(rule: dict[str, Any]) -> str:
    return str(rule.get("alert") or rule.get("record"))


#: recording rules the generator writes besides the catalogue's SLO ratios
OWN_RECORDINGS = {"marketplace_account:probe_platform_failing_checks:count", "marketplace:probe_accounts:count",
                  "marketplace:probe_platform_failing_accounts:count", p95_rule(AlertConfig()),
                  baseline_rule(AlertConfig())}


@pytest.mark.parametrize("rule", _rules(), ids=_rule_id)
def test_every_metric_in_an_expression_is_in_the_catalogue(rule: dict[str, Any]) -> None:
    names = _metric_names(rule["expr"])
    assert names or rule["expr"] == "vector(1)", rule["expr"]  # the watchdog reads nothing
    recorded = {r["record"] for r in _recording_rules()}
    unknown = names - _catalogue_names() - recorded - EXTERNAL_SERIES
    assert not unknown, f"{_rule_id(rule)} uses names not in catalogue.ALL: {sorted(unknown)}"


def test_recording_rules_are_the_slo_windows_and_the_platform_and_latency_helpers() -> None:
    recorded = [rule["record"] for rule in _recording_rules()]
    slo = [catalogue.slo_error_ratio_rule(w) for w in catalogue.SLO_WINDOWS]
    assert [r for r in recorded if r in slo] == slo
    failed = {f"marketplace:probe_platform_failed_accounts:count{w}" for w in ("5m", "30m", "2h", "6h")}
    assert set(recorded) == set(slo) | OWN_RECORDINGS | failed
    one = next(r for r in _recording_rules() if r["record"] == catalogue.slo_error_ratio_rule("5m"))
    assert "sum by (marketplace) (rate(marketplace_probe_failures_total" in one["expr"]
    assert "[5m]" in one["expr"] and "[1h]" not in one["expr"]


def test_credential_reasons_never_burn_the_platform_budget() -> None:
    """auth and permission are the seller's (or ours): not in the SLI's bad events, and left out
    of its valid events; every reason is classified one way or the other."""
    assert {"auth", "permission"}.isdisjoint(PLATFORM_REASONS)
    # every reason is placed on purpose: a new catalogue.Reason must be added to one of the two
    assert set(PLATFORM_REASONS) | set(ACCOUNT_REASONS) == set(catalogue.Reason)
    assert not set(PLATFORM_REASONS) & set(ACCOUNT_REASONS)
    one = next(r for r in _recording_rules() if r["record"] == catalogue.slo_error_ratio_rule("1h"))
    numerator, denominator = one["expr"].split("\n/\n")
    assert 'reason=~"assertion_failed|connect|invalid_response|server_error|throttled|timeout|tls"' in numerator
    assert "auth" not in numerator and 'reason=~"auth|client_error|internal|permission"' in denominator


def test_burn_rate_alerts_use_the_sre_workbook_windows_and_exact_thresholds() -> None:
    burns = {r["alert"]: r for r in _alerts() if r["labels"].get("component") == "slo"}
    # objective 99%: budget 0.01; 14.4x → 0.144, 6x → 0.06, 3x → 0.03, 1x → 0.01
    expected = {
        "MarketplaceErrorBudgetBurnFast": ("critical", (("1h", "5m", "0.144"), ("6h", "30m", "0.06"))),
        "MarketplaceErrorBudgetBurnSlow": ("warning", (("1d", "2h", "0.03"), ("3d", "6h", "0.01"))),
    }
    assert set(burns) == set(expected)
    for name, (severity, pairs) in expected.items():
        rule = burns[name]
        assert rule["labels"]["severity"] == severity
        for long, short, threshold in pairs:
            assert (f"  marketplace:probe_error_ratio:rate{long} > {threshold}\n"
                    f"  and marketplace:probe_error_ratio:rate{short} > {threshold}\n") in rule["expr"]
            # several accounts, and not a burn the platform alert already paged for
            assert f"marketplace:probe_platform_failed_accounts:count{short} >= 3" in rule["expr"]
            assert (f'unless on (marketplace) max_over_time(ALERTS{{alertname="MarketplacePlatformFailing"}}'
                    f"[{short}])") in rule["expr"]


def test_account_alerts_are_warnings_unless_the_account_is_tagged_critical() -> None:
    tiered = {"MarketplaceCheckFailing", "MarketplaceAuthFailing", "MarketplaceCredentialExpiringCritical"}
    for name in tiered:
        rules = [r for r in _alerts() if r["alert"] == name]
        by_severity = {r["labels"]["severity"]: r["expr"] for r in rules}
        assert set(by_severity) == {"critical", "warning"}, name
        tag = 'marketplace_probe_tag_info{job="marketplace-exporter", tag="critical"}'
        assert by_severity["critical"].endswith(f"and on (marketplace, site, account)\n  {tag}\n")
        assert by_severity["warning"].endswith(f"unless on (marketplace, site, account)\n  {tag}\n")
    platform = {r["alert"] for r in _alerts() if r["labels"]["component"] in ("platform", "slo")}
    assert platform == {"MarketplacePlatformFailing", "MarketplaceErrorBudgetBurnFast",
                        "MarketplaceErrorBudgetBurnSlow", "MarketplaceLatencyAboveBaseline"}
    assert set(PLATFORM_INHIBITS) <= {r["alert"] for r in _alerts()}


def test_failure_counters_are_read_robustly_to_their_first_appearance() -> None:
    """No rule may rely on failure counters pre-created at 0 (core-perf may stop doing that)."""
    for rule in _rules():
        for match in re.finditer(r"increase\((marketplace_probe_failures_total\{[^}]*\})\[(\w+)\]\)", rule["expr"]):
            if rule.get("alert") == "MarketplaceThrottled":
                continue  # "more than one" throttle: the first one is allowed to go uncounted
            series, window = match.groups()
            assert f"{series} > 0 unless {series} offset {window}" in rule["expr"], _rule_id(rule)


def test_credential_expiry_rules_exist_per_credential_kind_but_not_for_access_tokens() -> None:
    kinds = {(r["alert"], r["labels"]["credential"]) for r in _alerts() if "credential" in r["labels"]}
    for name in ("MarketplaceCredentialExpiringSoon", "MarketplaceCredentialExpiringCritical"):
        assert {k for n, k in kinds if n == name} == {"refresh_token", "authorization", "client_secret"}


def _alert_id(rule: dict[str, Any]) -> str:
    return f"{rule['alert']}-{rule['labels']['severity']}-{rule['labels'].get('credential', '')}"


@pytest.mark.parametrize("rule", _alerts(), ids=_alert_id)
def test_every_alert_is_complete(rule: dict[str, Any]) -> None:
    watchdog = rule["alert"] == "MarketplaceWatchdog"
    assert rule["labels"]["severity"] in SEVERITIES or (watchdog and rule["labels"]["severity"] == "none")
    # Alertmanager routes platform alerts and inhibits exporter-fed ones on this label
    assert rule["labels"]["component"] in COMPONENTS
    assert rule.get("for"), f"{rule['alert']} has no for:"
    annotations = rule["annotations"]
    for key in ANNOTATIONS:
        assert annotations.get(key), f"{rule['alert']} lacks {key}"
    assert "{{" not in annotations["summary"] and "{{" not in annotations["summary_zh"], "summary must be static"
    assert watchdog or ("{{" in annotations["description"] and "{{" in annotations["description_zh"])
    assert re.search(r"[\u4e00-\u9fff]", annotations["summary_zh"] + annotations["description_zh"])
    url = annotations["runbook_url"]
    assert url == f"{AlertConfig().runbook_base_url}#{rule['alert'].lower()}"
    assert url.split("#", 1)[1] in _runbook_anchors(), f"docs/runbooks.md has no anchor for {rule['alert']}"


def test_every_alert_has_a_firing_and_a_not_firing_promtool_case() -> None:
    firing: set[str] = set()
    not_firing: set[str] = set()
    for path in sorted((RULES_DIR / "tests").glob("*.test.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["tests"]:
            for test in case.get("alert_rule_test", []):
                (firing if test.get("exp_alerts") else not_firing).add(test["alertname"])
    names = {r["alert"] for r in _alerts()}
    assert not names - firing, f"no firing case: {sorted(names - firing)}"
    always = {"MarketplaceWatchdog"}  # it has no not-firing case by design
    assert not names - always - not_firing, f"no not-firing case: {sorted(names - always - not_firing)}"


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    tests = sorted(str(p) for p in (RULES_DIR / "tests").glob("*.test.yml"))
    assert tests
    result = subprocess.run([promtool, "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _runbook_sections() -> dict[str, str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    parts = re.split(r"^## (\w+)\n", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_alert_has_a_runbook_section_and_every_section_an_alert() -> None:
    alerts = {r["alert"] for r in _alerts()}
    sections = set(_runbook_sections())
    assert not alerts - sections, f"alerts without a runbook section: {sorted(alerts - sections)}"
    assert not sections - alerts, f"runbook sections without an alert: {sorted(sections - alerts)}"


@pytest.mark.parametrize("name", sorted(_runbook_sections()))
def test_every_runbook_section_says_meaning_impact_checks_and_how_to_silence(name: str) -> None:
    body = _runbook_sections()[name]
    for heading in ("**Meaning / 含义:**", "**Impact / 影响:**", "**First checks / 排查:**",
                    "**How to silence / 静默:**", "- 中文："):
        assert heading in body, f"{name}: no {heading}"
    assert f"amtool silence add alertname={name} " in body, f"{name}: no amtool example"
    assert f'<a id="{name.lower()}"></a>' in RUNBOOKS.read_text(encoding="utf-8")


def _promtool_fails_against(tmp_path: Path, test_file: str, **changes: Any) -> bool:
    """Render the rules with ``changes`` to AlertConfig and run one committed promtool test file."""
    promtool = require_binary("promtool")
    cfg = replace(AlertConfig(), **changes)
    (tmp_path / "tests").mkdir()
    (tmp_path / "marketplace-alerts.yml").write_text(generator.render_files(cfg)["marketplace-alerts.yml"],
                                                     encoding="utf-8")
    test = tmp_path / "tests" / test_file
    test.write_text((RULES_DIR / "tests" / test_file).read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=120)
    return result.returncode != 0


@pytest.mark.parametrize(("test_file", "changes"), [
    ("accounts.test.yml", {"check_failing_consecutive": 4}),
    ("accounts.test.yml", {"critical_tag": "tier1"}),
    ("platform.test.yml", {"platform_min_share": 0.7}),
    ("slo.test.yml", {"slo_objective": 0.995}),
    ("slo.test.yml", {"platform_reasons": ("timeout", "server_error", "auth")}),
    ("latency.test.yml", {"latency_factor": 8}),
    ("deploys.test.yml", {"post_deploy_factor": 20}),
], ids=lambda v: v if isinstance(v, str) else next(iter(v)))
def test_the_promtool_tests_notice_a_changed_threshold(tmp_path: Path, test_file: str,
                                                      changes: dict[str, Any]) -> None:
    assert (RULES_DIR / "tests" / test_file).exists()
    assert _promtool_fails_against(tmp_path, test_file, **changes)


def test_promtool_tests_evaluate_groups_in_the_generated_order() -> None:
    """Every test file pins ``group_eval_order`` (a recording read in the same step must exist):
    it must list the generated groups, all of them, in order."""
    groups = [g["name"] for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]]
    for path in sorted((RULES_DIR / "tests").glob("*.test.yml")):
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["group_eval_order"] == groups, path.name


def test_e2e_profile_renders_short_fors_and_the_given_bridge(tmp_path: Path) -> None:
    written = generator.write_profile(tmp_path, "test", "http://127.0.0.1:40123")
    rules = yaml.safe_load(written["marketplace-alerts.yml"].read_text(encoding="utf-8"))
    fors = {r["alert"]: r["for"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    # account alerts 10 s; the platform alert faster (it inhibits them from the start); the burn
    # rates slower than a 3-probe outage detection; the watchdog at once
    assert fors["MarketplaceCheckFailing"] == "10s" and fors["MarketplacePlatformFailing"] == "2s"
    assert fors["MarketplaceErrorBudgetBurnFast"] == "45s" and fors["MarketplaceWatchdog"] == "0m"
    am = yaml.safe_load(written["alertmanager.yml"].read_text(encoding="utf-8"))
    bridge = [r for r in am["receivers"] if r["name"] in ("oncall", "platform") or r["name"].startswith("team-")]
    urls = {w["url"] for r in bridge for w in r["webhook_configs"]}
    assert urls == {f"http://127.0.0.1:40123/alertmanager/{r['name']}" for r in bridge}
    assert "time_intervals" not in am  # no quiet hours in a test that may run at 03:00 Shanghai
    assert all("http_config" not in w for r in bridge for w in r["webhook_configs"])
    with_token = generator.write_profile(tmp_path / "t", "test", "http://127.0.0.1:1", "/run/token")
    am = yaml.safe_load(with_token["alertmanager.yml"].read_text(encoding="utf-8"))
    bridge = [r for r in am["receivers"] if r["name"] in ("oncall", "platform") or r["name"].startswith("team-")]
    assert {w["http_config"]["authorization"]["credentials_file"]
            for r in bridge for w in r["webhook_configs"]} == {"/run/token"}
    assert am["route"]["group_wait"] == "1s"
    promtool = require_binary("promtool")
    check = subprocess.run([promtool, "check", "rules", str(written["marketplace-alerts.yml"])],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
