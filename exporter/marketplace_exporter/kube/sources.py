"""What the manifests are made from: the alert mixin (rules and routing), the repository's
dashboards and bridge config, and the exporter config for Kubernetes (accounts from Secrets)."""

from __future__ import annotations

from pathlib import Path

from marketplace_exporter.kube.exporter import ACCOUNTS_DIR
from marketplace_exporter.kube.layout import Sources
from marketplace_exporter.kube.monitoring import BRIDGE_URL, alertmanager_config
from marketplace_exporter.mixin import operator
from marketplace_exporter.mixin.config import PROFILES
from marketplace_exporter.mixin.generate import alerts_of, build_groups, profile_config
from marketplace_exporter.mixin.promql import finish_alerts

#: the repository root when running from a checkout (exporter/marketplace_exporter/kube/ → ../../..)
REPO_ROOT = Path(__file__).resolve().parents[3]

EXPORTER_CONFIG = f"""\
# marketplace-exporter on Kubernetes (deploy/kubernetes, docs/kubernetes.md).
# Sellers come from the accounts files in the Secret marketplace-exporter-accounts, mounted read-only
# at {ACCOUNTS_DIR}: one file per seller (docs/configuration.md, accounts_files). Kubernetes
# refreshes a mounted Secret within about a minute of a change, and the exporter applies changed
# files without a restart; every shard reads every file and probes only the accounts it owns.
# Token files go into the Secret marketplace-exporter-tokens (/etc/marketplace-exporter/tokens);
# ${{VARIABLES}} come from the optional Secret marketplace-exporter-env.
# To change this file, replace the ConfigMap in your own overlay (configMapGenerator, behavior: replace).
accounts_files:
  - {ACCOUNTS_DIR}/
accounts_files_poll: 30s
defaults:
  interval: 60s
  timeout: 10s
  quota_budget: 0.5
"""


def read_sources(root: Path = REPO_ROOT) -> Sources:
    """The rules and the AlertmanagerConfig from the in-package mixin's default config (what
    alert-rules/ holds), the latter with its webhooks at the bridge's Service; dashboards and the
    bridge config from the repository."""
    cfg = PROFILES["default"]
    groups = finish_alerts(build_groups(cfg), cfg)
    in_cluster = profile_config("default", bridge_url=BRIDGE_URL)
    dashboards = {path.stem: path.read_text(encoding="utf-8") for path in sorted((root / "dashboards").glob("*.json"))}
    return Sources(
        rule_groups=groups,
        dashboards=dashboards,
        exporter_config=EXPORTER_CONFIG,
        bridge_config=(root / "deploy" / "bridge.yml").read_text(encoding="utf-8"),
        alertmanager_config=alertmanager_config(operator.build(in_cluster, alerts_of(groups))),
    )
