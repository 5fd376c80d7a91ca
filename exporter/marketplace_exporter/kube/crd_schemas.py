"""The prometheus-operator CRD schemas vendored in ``deploy/kubernetes/crd-schemas/``: where they
are and how they are made (tests/unit/test_kubernetes_manifests.py validates against them).

    python -m marketplace_exporter.kube.crd_schemas CRD.yaml OUT.json   # re-vendor from an upstream CRD

The vendored file is the storage version's ``openAPIV3Schema`` with its ``description`` texts
removed (they are most of the 800 kB of the AlertmanagerConfig CRD and never change a verdict),
re-serialised as JSON with sorted keys. deploy/kubernetes/crd-schemas/README.md names the release.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from marketplace_exporter.kube.yaml_text import load

SCHEMAS = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "crd-schemas"
#: the prometheus-operator release the schemas come from (README.md there names the commit)
OPERATOR_VERSION = "v0.93.0"
#: kind → vendored schema file
FILES = {
    "ServiceMonitor": f"prometheus-operator-{OPERATOR_VERSION}-servicemonitor.json",
    "PrometheusRule": f"prometheus-operator-{OPERATOR_VERSION}-prometheusrule.json",
    "AlertmanagerConfig": f"prometheus-operator-{OPERATOR_VERSION}-alertmanagerconfig.json",
}


def extract(crd_text: str) -> dict[str, Any]:
    """The storage version's schema of a CRD file, without description texts."""
    crd = load(crd_text)
    (version,) = [version for version in crd["spec"]["versions"] if version.get("storage")]
    schema: dict[str, Any] = _without_descriptions(version["schema"]["openAPIV3Schema"])
    return schema


def _without_descriptions(schema: Any) -> Any:
    if isinstance(schema, dict):
        # a property *named* description is a schema (a dict), never dropped
        return {key: _without_descriptions(value) for key, value in schema.items()
                if not (key == "description" and isinstance(value, str))}
    if isinstance(schema, list):
        return [_without_descriptions(item) for item in schema]
    return schema


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    schema = extract(Path(argv[0]).read_text(encoding="utf-8"))
    Path(argv[1]).write_text(json.dumps(schema, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
