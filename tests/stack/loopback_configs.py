"""The compose stack's Prometheus and Alertmanager configs as the stack tests run them on loopback:
deploy/prometheus.yml and the generated alert-rules/alertmanager.yml with only addresses, intervals,
rule-file paths and the bridge's token file changed (tests/unit/test_compose.py pins that), and the
generated rule files to load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the compose stack's Prometheus config: the file the stack tests run
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "alert-rules" / "alertmanager.yml"


# --- Prometheus config: deploy/prometheus.yml with addresses and intervals for loopback -------------------


def stack_prometheus_config(addresses: Mapping[str, str], rule_files: Sequence[Path], interval: str) -> dict[str, Any]:
    """deploy/prometheus.yml as a test runs it: every ``service:port`` target (and ``localhost``, which
    is Prometheus itself) becomes ``addresses[service]``; scrape and evaluation interval become
    ``interval``; ``rule_files`` are the host paths compose mounts. Nothing else changes."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))

    def address(target: str) -> str:
        host = target.rpartition(":")[0]
        service = "prometheus" if host == "localhost" else host
        assert service in addresses, f"deploy/prometheus.yml targets {target}: no address given for {service!r}"
        return addresses[service]

    config["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    config["rule_files"] = [str(path) for path in rule_files]
    for section in [*config["scrape_configs"], *config.get("alerting", {}).get("alertmanagers", [])]:
        for static in section["static_configs"]:
            static["targets"] = [address(target) for target in static["targets"]]
    return config


def stack_alertmanager_config(bridge_address: str, token_file: Path) -> dict[str, Any]:
    """alert-rules/alertmanager.yml as a test runs it: webhooks at ``bridge_address`` instead of the compose
    service ``bridge:9762`` (no DNS lookup leaves the machine), the Bearer token read from ``token_file``."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    for receiver in config["receivers"]:
        if not any(h["url"].startswith("http://bridge:9762/") for h in receiver.get("webhook_configs", [])):
            # around the bridge (heartbeat, e-mail fallback): placeholder hosts, never contacted here
            receiver.pop("webhook_configs", None)
            receiver.pop("email_configs", None)
            continue
        for hook in receiver.get("webhook_configs", []):
            assert hook["url"].startswith("http://bridge:9762/"), hook["url"]
            hook["url"] = hook["url"].replace("http://bridge:9762/", f"http://{bridge_address}/", 1)
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return config


def generated_rule_files() -> list[Path]:
    """The rule files `marketplace-exporter rules generate` writes into alert-rules/ (those with groups)."""
    return sorted(path for path in (ROOT / "alert-rules").glob("*.yml")
                  if "groups" in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
