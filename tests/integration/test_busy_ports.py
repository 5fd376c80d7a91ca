"""A port already in use is one line naming the flag that moves it, and exit status 1 — for the
exporter, each of the demo's two servers, the simulator and the bridge. f014b6e printed a 29-line
``OSError`` traceback from inside ``asyncio.run`` (issue 14)."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketplace_exporter.cli import _parser
from marketplace_exporter.serving import listen_address


@pytest.fixture
def busy() -> Iterator[str]:
    """A 127.0.0.1 port someone else is listening on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield f"127.0.0.1:{taken.getsockname()[1]}"


def test_a_busy_port_is_one_line_naming_the_flag(busy: str, tmp_path: Path) -> None:
    (tmp_path / "exporter.yml").write_text("{}\n")
    (tmp_path / "bridge.yml").write_text(
        "storage_path: outbox.db\nauth: {bearer_token: {value: busy-port-test-token}}\n"
        "receivers: {ops: {channel: webhook, url: {value: 'http://127.0.0.1:1/hook'}}}\n")
    free = "127.0.0.1:0"
    commands = {
        "--web.listen-address": ["run", f"--config.file={tmp_path / 'exporter.yml'}", f"--web.listen-address={busy}",
                                 f"--storage.path={tmp_path / 'data'}"],
        "--simulator.listen-address": ["demo", f"--simulator.listen-address={busy}", f"--web.listen-address={free}",
                                       f"--storage.path={tmp_path / 'demo'}"],
        "--web.listen-address (simulate)": ["simulate", f"--web.listen-address={busy}"],
        "--web.listen-address (bridge)": ["bridge", f"--config.file={tmp_path / 'bridge.yml'}",
                                          f"--web.listen-address={busy}"],
    }
    running = {name: subprocess.Popen([sys.executable, "-m", "marketplace_exporter", *argv], cwd=tmp_path,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, argv in commands.items()}
    for name, process in running.items():
        out, err = process.communicate(timeout=60)
        flag = name.split()[0]
        expected = (f"error: cannot listen on {busy} ({flag}): address already in use; choose another "
                    f"HOST:PORT with {flag}")
        assert process.returncode == 1, (name, out, err)
        assert "Traceback" not in err, err
        assert err.splitlines()[-1] == expected, (name, err)


def test_the_readme_says_how_to_move_both_demo_ports() -> None:
    """The README's DEMO_ARGS example parses as ``demo`` flags and moves both servers."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(r'^make demo DEMO_ARGS="([^"]+)"$', readme, re.M)
    assert found, "README: no `make demo DEMO_ARGS=\"...\"` example"
    args = _parser().parse_args(["demo", *shlex.split(found.group(1))])
    assert args.listen != "127.0.0.1:9761" and args.sim_listen != "127.0.0.1:9763"


@pytest.mark.parametrize("port", ["²", "70000", "http"])
def test_a_port_that_is_not_a_port_is_one_line_too(port: str) -> None:
    """'²' passed ``str.isdigit()`` and then crashed ``int()``; 70000 reached the socket layer as an
    ``OverflowError`` traceback."""
    with pytest.raises(SystemExit, match=r"invalid listen address '127\.0\.0\.1:.+': expected HOST:PORT"):
        listen_address(f"127.0.0.1:{port}")
