"""The container image, really built (``make image``: buildah, from the Dockerfile) and really run (podman).

``make image-test`` builds the image and runs this module with ``IMAGE_UNDER_TEST`` (the image) and
``IMAGE_PODMAN`` (podman with the project's storage and the runtime flags this machine needs) set;
``make test`` has neither and skips it (building takes minutes: .ci/run runs ``make image-test`` as its
own step). Two containers: the demo (exporter + simulator) on free loopback ports, scraped over HTTP,
health-checked and stopped with SIGTERM; and one that exports the assets into a bind mount and
validates the exported example config.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import free_port, local_client

from marketplace_exporter import assets

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("IMAGE_UNDER_TEST", "")
PODMAN = shlex.split(os.environ.get("IMAGE_PODMAN", ""))
#: podman raises RLIMIT_NOFILE/NPROC above what this sandbox allows unless told the limits; no systemd
#: to run health-check timers (`podman healthcheck run` runs the image's check on demand instead)
RUN = ["run", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "host"]

pytestmark = pytest.mark.skipif(not IMAGE or not PODMAN, reason="run `make image-test` (builds the image first)")


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def _label(name: str) -> str:
    return podman("image", "inspect", IMAGE, "--format", f'{{{{index .Labels "{name}"}}}}').stdout.strip()


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, str]]:
    """(container name, exporter URL): ``marketplace-exporter demo`` in the image, ready."""
    name = f"mpe-image-test-{uuid.uuid4().hex[:8]}"
    port, sim_port = free_port(), free_port()
    podman(*RUN, "--detach", "--name", name, "--env", f"HEALTHCHECK_URL=http://127.0.0.1:{port}/-/healthy",
           IMAGE, "demo", f"--web.listen-address=127.0.0.1:{port}", f"--simulator.listen-address=127.0.0.1:{sim_port}")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with local_client(timeout=2) as client:
            while True:
                try:
                    if client.get(f"{url}/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                state = podman("inspect", name, "--format", "{{.State.Status}}").stdout.strip()
                assert state == "running" and time.monotonic() < deadline, (
                    f"container {state}, not ready:\n{podman('logs', name, check=False).stderr[-3000:]}")
                time.sleep(0.5)
        yield name, url
    finally:
        podman("rm", "--force", "--time", "10", name, check=False)


def test_the_demo_runs_in_the_image_as_the_unprivileged_user_and_reports_its_build(demo: tuple[str, str]) -> None:
    name, url = demo
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    version, revision = _label("org.opencontainers.image.version"), _label("org.opencontainers.image.revision")
    assert version and revision == subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                                  text=True, timeout=30, check=True).stdout.strip()
    with local_client() as client:
        deadline = time.monotonic() + 60
        while "marketplace_probe_success{" not in (metrics := client.get(f"{url}/metrics").text):
            assert time.monotonic() < deadline, "no probe result from the demo within 60 s"
            time.sleep(1)
    (build_line,) = [line for line in metrics.splitlines() if line.startswith("marketplace_exporter_build_info{")]
    assert f'version="{version}"' in build_line and f'revision="{revision}"' in build_line, build_line
    assert 'branch="' in build_line and 'pythonversion="3.11.' in build_line, build_line


def test_the_image_health_check_passes_and_sigterm_stops_it_cleanly(demo: tuple[str, str]) -> None:
    name, _ = demo
    podman("healthcheck", "run", name)
    podman("stop", "--time", "10", name)
    assert podman("inspect", name, "--format", "{{.State.ExitCode}}").stdout.strip() == "0", (
        podman("logs", name, check=False).stderr[-3000:])


def test_the_image_exports_its_assets_and_validates_the_example_config(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)  # the container's user 10001 writes into the bind mount
    script = ("marketplace-exporter assets export /out/assets "
              "&& marketplace-exporter check-config /out/assets/examples/demo.yml")
    result = podman(*RUN, "--rm", "--no-healthcheck", "--volume", f"{out}:/out", "--entrypoint", "/bin/sh",
                    IMAGE, "-c", script)
    assert "examples/demo.yml: valid" in result.stdout, result.stdout
    exported = {p.relative_to(out / "assets").as_posix() for p in (out / "assets").rglob("*") if p.is_file()}
    shipped = assets.shipped()
    assert exported == set(shipped)
    for relative, source in shipped.items():
        assert (out / "assets" / relative).read_bytes() == source.read_bytes(), relative
