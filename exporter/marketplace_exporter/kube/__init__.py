"""The Kubernetes manifests in ``deploy/kubernetes/``: a kustomize base and overlays, generated.

``python -m marketplace_exporter.kube`` (``make kubernetes``) writes them from one source, as
kube-prometheus does: the exporter and the bridge as StatefulSets, their Services,
ServiceMonitors, NetworkPolicies and PodDisruptionBudget, the alert rules of ``alert-rules/`` as a
PrometheusRule, the bridge routes as an AlertmanagerConfig, and the dashboards as ConfigMaps for
Grafana's sidecar. ``--check`` fails when a committed file is stale (tests run it).

Modules: :mod:`.objects` (names, labels, security contexts, probes), :mod:`.exporter`,
:mod:`.bridge`, :mod:`.monitoring` (PrometheusRule, AlertmanagerConfig, dashboards),
:mod:`.layout` (the files of the base and the overlays), :mod:`.yaml_text` (deterministic YAML).
"""
