"""What the manifests are made from: the repository's generated rules and dashboards, the bridge
config, and the exporter config for Kubernetes (accounts from mounted Secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from marketplace_exporter.kube.exporter import ACCOUNTS_DIR
from marketplace_exporter.kube.layout import Sources

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
    rules_file = root / "alert-rules" / "marketplace-alerts.yml"
    rules: dict[str, Any] = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    dashboards = {path.stem: path.read_text(encoding="utf-8") for path in sorted((root / "dashboards").glob("*.json"))}
    return Sources(
        rule_groups=rules["groups"],
        dashboards=dashboards,
        exporter_config=EXPORTER_CONFIG,
        bridge_config=(root / "deploy" / "bridge.yml").read_text(encoding="utf-8"),
    )
