"""prometheus-operator and Grafana objects: the alert rules as a PrometheusRule, the bridge routes
as an AlertmanagerConfig, and each dashboard as a ConfigMap Grafana's sidecar picks up."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from marketplace_exporter.kube.objects import BRIDGE, BRIDGE_PORT, EXPORTER, Obj, metadata

#: the label kube-prometheus-stack's Grafana sidecar watches (``sidecar.dashboards.label``)
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"
#: the folder annotation its sidecar reads when ``sidecar.dashboards.folderAnnotation`` is set to it
GRAFANA_FOLDER_ANNOTATION = "grafana_folder"
GRAFANA_FOLDER = "Marketplace exporter"
#: stands for the overlay's namespace in the bridge URL until kustomize's replacement fills it in
NAMESPACE_PLACEHOLDER = "NAMESPACE"
#: the bridge as Alertmanager reaches it from its own namespace
BRIDGE_URL = f"http://{BRIDGE}.{NAMESPACE_PLACEHOLDER}.svc:{BRIDGE_PORT}"


def prometheus_rule(groups: Sequence[Mapping[str, Any]]) -> Obj:
    """The generated rule groups, unchanged, as one PrometheusRule."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata(EXPORTER, "alerting"), "spec": {"groups": [dict(group) for group in groups]}}


def alertmanager_config(generated: Mapping[str, Any]) -> Obj:
    """The mixin's AlertmanagerConfig (generated with ``bridge_url=BRIDGE_URL``) with the labels
    of the other objects; its namespace comes from the overlay."""
    config: Obj = copy.deepcopy(dict(generated))
    config["metadata"] = metadata(config["metadata"]["name"], "alerting")
    return config


def dashboard_config_maps(dashboards: Mapping[str, str]) -> list[Obj]:
    """One ConfigMap per dashboard (``name`` → its JSON text), fixed names without a hash suffix:
    the sidecar would otherwise load an old and a new copy side by side after every change."""
    return [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(f"{EXPORTER}-dashboard-{name}", "dashboards",
                             extra_labels={GRAFANA_DASHBOARD_LABEL: "1"},
                             annotations={GRAFANA_FOLDER_ANNOTATION: GRAFANA_FOLDER}),
        "data": {f"marketplace-exporter-{name}.json": text},
    } for name, text in sorted(dashboards.items())]
