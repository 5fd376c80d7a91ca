"""The wheel as a user gets it: built once, installed (not editable) into a fresh venv, run from elsewhere.

One build and one venv for the module (pip fetches the runtime dependencies, so this is the slowest
part). Every command runs with an unrelated temporary directory as its working directory and no
PYTHONPATH, so nothing can be read from this checkout by accident: the installed package must bring
its demo config, its dashboards, rules and configs itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import free_port, local_client, require_binary, stop_process

from marketplace_exporter import assets

ROOT = Path(__file__).resolve().parents[2]
HATCHLING = Path(sys.executable).parent / "hatchling"

#: (command line after `marketplace-exporter`, text its stdout must contain), run in this order from an
#: unrelated directory; {out} is a fresh directory. The export comes first: later commands use its files.
COMMANDS: list[tuple[list[str], str]] = [
    (["assets", "export", "{out}/bundle"], "file(s) written to"),
    (["check-config", "{out}/bundle/examples/demo.yml"], "valid"),
    (["check-config", "{out}/bundle/deploy/exporter.demo.yml"], "valid"),
    # the alert-rule mixin from the installed package, configured by the exported example
    (["rules", "generate", "--config", "{out}/bundle/alert-rules/mixin.example.yml", "--out", "{out}/rules"], "wrote"),
]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    #: a directory with nothing of this repository in it: every command's working directory
    elsewhere: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "marketplace-exporter"

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.command), *args], cwd=self.elsewhere, env=self.env(), capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([str(HATCHLING), "build", "--target", "wheel", "--directory", str(dist)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Installed(wheel=wheel, venv=venv, elsewhere=tmp_path_factory.mktemp("elsewhere"))


def test_the_installed_package_is_the_wheel_not_this_checkout(installed: Installed) -> None:
    probe = subprocess.run([str(installed.venv / "bin" / "python"), "-c",
                            "import marketplace_exporter as m, importlib.metadata as md; "
                            "print(m.__file__); print(md.version('marketplace-exporter'))"],
                           cwd=installed.elsewhere, env=installed.env(), capture_output=True, text=True, timeout=60)
    location, version = probe.stdout.split()
    assert Path(location).is_relative_to(installed.venv) and not Path(location).is_relative_to(ROOT)
    assert installed.wheel.name.startswith(f"marketplace_exporter-{version}-")
    assert installed.run("--version").stdout.strip() == f"marketplace-exporter {version}"


def test_the_wheel_carries_licence_metadata_and_the_assets_byte_for_byte(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        carried = {name.removeprefix("marketplace_exporter/_assets/"): wheel.read(name) for name in names
                   if name.startswith("marketplace_exporter/_assets/")}
    assert "License-Expression: Apache-2.0" in metadata
    assert re.search(r"^Project-URL: Homepage, https://github\.com/\S+$", metadata, re.M)
    assert {n.rsplit("/", 1)[1] for n in names if "/licenses/" in n} == {"LICENSE", "NOTICE"}
    expected = {rel: path for rel, path in assets.shipped().items() if not rel.startswith("examples/")}
    assert set(carried) == set(expected)
    for relative, path in expected.items():
        assert carried[relative] == path.read_bytes(), f"{relative}: the wheel's copy differs from the repository's"


def test_the_demo_runs_from_the_installed_wheel_and_reports_its_build(installed: Installed) -> None:
    port, sim_port = free_port(), free_port()
    log = installed.elsewhere / "demo.stderr.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen([str(installed.command), "demo", f"--web.listen-address=127.0.0.1:{port}",
                                 f"--simulator.listen-address=127.0.0.1:{sim_port}"], cwd=installed.elsewhere,
                                env=installed.env(), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            metrics = ""
            deadline = time.monotonic() + 60
            with local_client(timeout=2) as client:
                while "marketplace_probe_success{" not in metrics:
                    assert proc.poll() is None and time.monotonic() < deadline, (
                        f"the installed demo did not probe:\n{log.read_text()[-3000:]}")
                    try:
                        metrics = client.get(f"http://127.0.0.1:{port}/metrics").text
                    except httpx.TransportError:  # not listening yet
                        pass
                    time.sleep(0.5)
        finally:
            code = stop_process(proc, "the installed demo")
    assert code == 0, log.read_text()[-3000:]
    (line,) = [line for line in metrics.splitlines() if line.startswith("marketplace_exporter_build_info{")]
    version = installed.run("--version").stdout.split()[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout
    assert f'version="{version}"' in line and f'revision="{head.strip()}"' in line, line


def test_the_installed_commands_work_from_an_unrelated_directory(installed: Installed) -> None:
    out = installed.elsewhere / "out"
    for args, expected in COMMANDS:
        argv = [arg.format(out=out) for arg in args]
        result = installed.run(*argv)
        assert result.returncode == 0 and expected in result.stdout, (
            f"marketplace-exporter {' '.join(argv)} -> {result.returncode}\n{result.stdout}\n{result.stderr}")


def test_an_exported_rule_test_passes_with_promtool_and_the_alertmanager_config_with_amtool(
        installed: Installed) -> None:
    bundle = installed.elsewhere / "promtool-bundle"
    assert installed.run("assets", "export", str(bundle)).returncode == 0
    # one rule test is enough to show the exported layout resolves `rule_files: [../marketplace-alerts.yml]`
    # (tests/unit/test_alert_rules.py runs all of them against the repository's files)
    tests = sorted((bundle / "alert-rules" / "tests").glob("*.test.yml"), key=lambda p: p.stat().st_size)
    assert tests
    promtool = subprocess.run([require_binary("promtool"), "test", "rules", str(tests[0])], capture_output=True,
                              text=True, timeout=300, cwd=installed.elsewhere)
    assert promtool.returncode == 0, promtool.stdout[-3000:] + promtool.stderr[-3000:]
    alertmanager = bundle / "alert-rules" / "alertmanager.yml"
    amtool = subprocess.run([require_binary("amtool"), "check-config", str(alertmanager)],
                            capture_output=True, text=True, timeout=60)
    assert amtool.returncode == 0, amtool.stdout + amtool.stderr

