"""The Alertmanager → chat-robot bridge: one pod (its outbox is a SQLite file with one writer) on a
persistent volume, so an accepted alert survives a restart or a reschedule."""

from __future__ import annotations

from marketplace_exporter.kube.objects import (
    BRIDGE,
    BRIDGE_CONFIG,
    BRIDGE_ENV_SECRET,
    BRIDGE_PORT,
    BRIDGE_TOKEN_SECRET,
    IMAGE,
    IMAGE_TAG,
    Obj,
    container_security,
    dns_egress,
    http_probe,
    labels,
    metadata,
    monitoring_peer,
    pod_security,
    selector,
    tmp_volume,
)

COMPONENT = "bridge"
CONFIG_DIR = "/etc/marketplace-bridge"
DATA_DIR = "/var/lib/marketplace-bridge"


def statefulset(resources: Obj) -> Obj:
    tmp, tmp_mount = tmp_volume()
    container: Obj = {
        "name": COMPONENT,
        "image": f"{IMAGE}:{IMAGE_TAG}",
        "args": ["bridge", f"--config.file={CONFIG_DIR}/bridge.yml", f"--web.listen-address=0.0.0.0:{BRIDGE_PORT}"],
        "env": [{"name": "BRIDGE_TOKEN",
                 "valueFrom": {"secretKeyRef": {"name": BRIDGE_TOKEN_SECRET, "key": "token"}}}],
        # robot webhook URLs and signing secrets, the ${VARS} bridge.yml names
        "envFrom": [{"secretRef": {"name": BRIDGE_ENV_SECRET}}],
        "ports": [{"name": "http", "containerPort": BRIDGE_PORT, "protocol": "TCP"}],
        "startupProbe": http_probe("/-/healthy", period=2, failures=30),
        "livenessProbe": http_probe("/-/healthy", period=15, failures=4, timeout=5),
        "readinessProbe": http_probe("/-/ready", period=10, failures=3),
        "resources": resources,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "outbox", "mountPath": DATA_DIR}, tmp_mount],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(BRIDGE, COMPONENT),
        "spec": {
            "serviceName": BRIDGE,
            # never more than one: two bridges would share neither the outbox nor the robots' rate limits
            "replicas": 1,
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": selector(COMPONENT)},
            "template": {
                "metadata": {"labels": labels(COMPONENT),
                             "annotations": {"kubectl.kubernetes.io/default-container": COMPONENT}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security(),
                    # what is queued stays in the outbox on the volume and is sent after the restart
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": BRIDGE_CONFIG}}, tmp],
                },
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "outbox", "labels": labels(COMPONENT)},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }


def service() -> Obj:
    """Named ``marketplace-bridge``: the ``job`` label the bridge alerts select."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(BRIDGE, COMPONENT),
            "spec": {"selector": selector(COMPONENT),
                     "ports": [{"name": "http", "port": BRIDGE_PORT, "targetPort": "http", "protocol": "TCP"}]}}


def service_monitor() -> Obj:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": metadata(BRIDGE, COMPONENT),
            "spec": {"selector": {"matchLabels": selector(COMPONENT)},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}]}}


def network_policy() -> Obj:
    """In: Alertmanager and Prometheus from the monitoring namespace. Out: DNS and HTTPS (the robots)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(BRIDGE, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector(COMPONENT)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [monitoring_peer()], "ports": [{"protocol": "TCP", "port": BRIDGE_PORT}]}],
            "egress": [dns_egress(), {"ports": [{"protocol": "TCP", "port": 443}]}],
        },
    }


def objects(resources: Obj) -> list[Obj]:
    return [statefulset(resources), service(), network_policy()]
