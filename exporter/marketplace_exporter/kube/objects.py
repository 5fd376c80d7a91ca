"""Names, labels and the pod settings both StatefulSets share (security, probes)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

EXPORTER = "marketplace-exporter"
BRIDGE = "marketplace-bridge"
#: the StatefulSet's governing Service: stable DNS per shard (marketplace-exporter-2.<this>)
EXPORTER_HEADLESS = "marketplace-exporter-headless"
#: deploy markers and traffic reports go to shard 0 only (docs/kubernetes.md, "Writes")
EXPORTER_WRITES = "marketplace-exporter-writes"
EXPORTER_CONFIG = "marketplace-exporter-config"
BRIDGE_CONFIG = "marketplace-bridge-config"
#: Secrets the user creates (docs/kubernetes.md): accounts files, token files, environment
ACCOUNTS_SECRET = "marketplace-exporter-accounts"
TOKENS_SECRET = "marketplace-exporter-tokens"
EXPORTER_ENV_SECRET = "marketplace-exporter-env"
BRIDGE_ENV_SECRET = "marketplace-bridge-env"
#: the Bearer token Alertmanager sends to the bridge (key ``token``); the bridge reads it as BRIDGE_TOKEN
BRIDGE_TOKEN_SECRET = "marketplace-bridge-token"

IMAGE = "ghcr.io/marketplace-exporter/marketplace-exporter"
#: the release the manifests name; `kustomize edit set image` (or `images:`) pins another
IMAGE_TAG = "0.1.0"
#: the image's user and group (Dockerfile: useradd --uid 10001)
RUN_AS = 10001

EXPORTER_PORT = 9761
BRIDGE_PORT = 9762

#: the label prometheus-operator and the NetworkPolicies use to tell the headless Service apart
HEADLESS_LABEL = "marketplace-exporter/headless"
#: label Kubernetes sets on every namespace (1.21+): how NetworkPolicies name the monitoring namespace
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: where Prometheus and Alertmanager run (kube-prometheus); overlays may change it
MONITORING_NAMESPACE = "monitoring"


def selector(component: str) -> dict[str, str]:
    """The labels that select a component's pods (never changed after the first install: a
    StatefulSet's selector is immutable)."""
    return {"app.kubernetes.io/name": EXPORTER, "app.kubernetes.io/component": component}


def labels(component: str) -> dict[str, str]:
    return {**selector(component), "app.kubernetes.io/part-of": EXPORTER}


def metadata(name: str, component: str, *, extra_labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": {**labels(component), **(extra_labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security() -> Obj:
    """Pod-level: the Pod Security Standard "restricted" profile (the overlays' namespace enforces it)."""
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def container_security() -> Obj:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def http_probe(path: str, *, period: int, failures: int, timeout: int = 3) -> Obj:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": timeout,
            "failureThreshold": failures}


def resources(cpu: str, memory: str, memory_limit: str) -> Obj:
    """Requests from the benchmark (docs/kubernetes.md, Sizing); a memory limit, no CPU limit
    (a CPU limit throttles the event loop and makes probes late, which then read as failures)."""
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


def tmp_volume() -> tuple[Obj, Obj]:
    """/tmp as a small emptyDir: the root filesystem is read-only."""
    return ({"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}, {"name": "tmp", "mountPath": "/tmp"})


def dns_egress() -> Obj:
    """Name lookups (kube-dns / CoreDNS in kube-system)."""
    return {"to": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def monitoring_peer() -> Obj:
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: MONITORING_NAMESPACE}}}


__all__ = ["BRIDGE", "EXPORTER", "IMAGE", "IMAGE_TAG", "Obj", "labels", "metadata", "selector"]
