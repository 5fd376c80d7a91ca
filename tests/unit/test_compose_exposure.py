"""docker-compose.yml exposes nothing by default: every port published on 127.0.0.1 unless
MPX_PUBLISH_ADDRESS says otherwise, and Grafana's admin password is a git-ignored compose secret,
never a default. Checked with the real Compose v2 binary, through test_compose's helpers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from test_compose import ROOT, _compose, _model, _services


def test_every_port_is_published_where_mpx_publish_address_says() -> None:
    result = _compose("--profile", "demo", "config", "--format", "json", env={"MPX_PUBLISH_ADDRESS": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    for name, service in json.loads(result.stdout)["services"].items():
        assert {p["host_ip"] for p in service["ports"]} == {"0.0.0.0"}, name


def test_grafanas_admin_password_is_a_git_ignored_compose_secret_never_a_default() -> None:
    grafana = _services()["grafana"]
    environment = grafana["environment"]
    assert not {"GF_SECURITY_ADMIN_PASSWORD", "GF_SECURITY_ADMIN_USER"} & set(environment), environment
    (secret,) = grafana["secrets"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD__FILE"] == f"/run/secrets/{secret['source']}"
    source = Path(_model()["secrets"][secret["source"]]["file"])
    assert source.parent == ROOT / "deploy"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(source)], cwd=ROOT)
    assert ignored.returncode == 0, f"{source} must be git-ignored: it holds a password"
    assert "compose-secrets:" in (ROOT / "Makefile").read_text(encoding="utf-8")
