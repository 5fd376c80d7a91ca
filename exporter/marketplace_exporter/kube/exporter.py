"""The exporter: a StatefulSet (one pod per shard), its Services, ServiceMonitor, PDB and NetworkPolicy.

Why a StatefulSet: each pod needs a stable ordinal (``--shard=auto`` reads it from the pod name)
and its own small volume for the deploy audit log. ``podManagementPolicy: Parallel``: shards are
independent, so they start and stop together instead of one after the other.
"""

from __future__ import annotations

from marketplace_exporter.kube.objects import (
    ACCOUNTS_SECRET,
    EXPORTER,
    EXPORTER_CONFIG,
    EXPORTER_ENV_SECRET,
    EXPORTER_HEADLESS,
    EXPORTER_PORT,
    EXPORTER_WRITES,
    HEADLESS_LABEL,
    IMAGE,
    IMAGE_TAG,
    TOKENS_SECRET,
    Obj,
    container_security,
    dns_egress,
    http_probe,
    labels,
    metadata,
    pod_security,
    selector,
    tmp_volume,
)
from marketplace_exporter.shard import POD_NAME_ENV, TOTAL_SHARDS_ENV

COMPONENT = "exporter"
CONFIG_DIR = "/etc/marketplace-exporter/config"
CONFIG_FILE = f"{CONFIG_DIR}/config.yml"
ACCOUNTS_DIR = "/etc/marketplace-exporter/accounts"
TOKENS_DIR = "/etc/marketplace-exporter/tokens"
DATA_DIR = "/var/lib/marketplace-exporter"
#: how often Prometheus scrapes each shard; probes run on their own intervals, so this costs no quota
SCRAPE_INTERVAL = "30s"


def statefulset(resources: Obj) -> Obj:
    """One replica, one shard; the sharded overlay patches replicas and the total together."""
    tmp, tmp_mount = tmp_volume()
    container: Obj = {
        "name": COMPONENT,
        "image": f"{IMAGE}:{IMAGE_TAG}",
        "args": ["run", f"--config.file={CONFIG_FILE}", f"--web.listen-address=0.0.0.0:{EXPORTER_PORT}",
                 f"--storage.path={DATA_DIR}", "--shard=auto"],
        "env": [
            {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": TOTAL_SHARDS_ENV, "value": "1"},
        ],
        # deploy/traffic API tokens and the ${VARS} the config and accounts files reference
        "envFrom": [{"secretRef": {"name": EXPORTER_ENV_SECRET, "optional": True}}],
        "ports": [{"name": "http", "containerPort": EXPORTER_PORT, "protocol": "TCP"}],
        # the server listens only once the config (and every accounts file) is loaded: allow
        # minutes for tens of thousands of accounts before liveness may act
        "startupProbe": http_probe("/-/healthy", period=5, failures=120),
        "livenessProbe": http_probe("/-/healthy", period=15, failures=4, timeout=5),
        "readinessProbe": http_probe("/-/ready", period=10, failures=3),
        "resources": resources,
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "accounts", "mountPath": ACCOUNTS_DIR, "readOnly": True},
            {"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True},
            {"name": "data", "mountPath": DATA_DIR},
            tmp_mount,
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(EXPORTER, COMPONENT),
        "spec": {
            "serviceName": EXPORTER_HEADLESS,
            "replicas": 1,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector(COMPONENT)},
            "template": {
                "metadata": {"labels": labels(COMPONENT),
                             "annotations": {"kubectl.kubernetes.io/default-container": COMPONENT}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    "terminationGracePeriodSeconds": 30,
                    # shards on different nodes where possible: one lost node costs one shard
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": selector(COMPONENT)}}],
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": EXPORTER_CONFIG}},
                        # a projected volume: more Secrets can be added when one (1 MiB at most)
                        # no longer holds every seller's file (docs/kubernetes.md)
                        {"name": "accounts", "projected": {"sources": [{"secret": {"name": ACCOUNTS_SECRET}}]}},
                        {"name": "tokens", "secret": {"secretName": TOKENS_SECRET, "optional": True}},
                        tmp,
                    ],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": labels(COMPONENT)},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }


def _service(name: str, *, extra_labels: dict[str, str] | None = None, headless: bool = False,
             pod: str | None = None) -> Obj:
    spec: Obj = {"selector": selector(COMPONENT) | ({"statefulset.kubernetes.io/pod-name": pod} if pod else {}),
                 "ports": [{"name": "http", "port": EXPORTER_PORT, "targetPort": "http", "protocol": "TCP"}]}
    if headless:
        spec = {"clusterIP": "None", "publishNotReadyAddresses": True, **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(name, COMPONENT, extra_labels=extra_labels),
            "spec": spec}


def services() -> list[Obj]:
    """``marketplace-exporter``: every shard (what the ServiceMonitor scrapes; its name is the ``job``
    label the alert rules select). ``-headless``: per-shard DNS names. ``-writes``: shard 0 only,
    for deploy markers and traffic reports."""
    return [
        _service(EXPORTER),
        _service(EXPORTER_HEADLESS, extra_labels={HEADLESS_LABEL: "true"}, headless=True),
        _service(EXPORTER_WRITES, extra_labels={HEADLESS_LABEL: "writes"}, pod=f"{EXPORTER}-0"),
    ]


def service_monitor() -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(EXPORTER, COMPONENT),
        "spec": {
            "selector": {"matchLabels": selector(COMPONENT),
                         "matchExpressions": [{"key": HEADLESS_LABEL, "operator": "DoesNotExist"}]},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": SCRAPE_INTERVAL,
                           "scrapeTimeout": "25s"}],
        },
    }


def pod_disruption_budget() -> Obj:
    """A drain takes one shard at a time (its accounts go unprobed until it is back)."""
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": metadata(EXPORTER, COMPONENT),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(COMPONENT)}}}


def network_policy() -> Obj:
    """In: the exporter's one port (Prometheus, deploy pipelines, traffic reporters, /probe users).
    Out: DNS, and HTTPS/HTTP to the marketplaces (anywhere on the internet). Generic http_checks on
    other ports, a PostgreSQL audit log (5432) or Grafana annotations need an extra egress rule."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(EXPORTER, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector(COMPONENT)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": EXPORTER_PORT}]}],
            "egress": [dns_egress(), {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 80}]}],
        },
    }


def objects(resources: Obj) -> list[Obj]:
    return [statefulset(resources), *services(), pod_disruption_budget(), network_policy()]
