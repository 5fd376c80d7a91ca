"""``deploy mark`` and ``deploys list|export`` run through the real command-line entry point
against a real exporter app listening on 127.0.0.1 (served from a background thread, since the
CLI's httpx client is synchronous), plus the CI-variable defaults and ``ExporterClient`` errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from marketplace_exporter.api_client import ExporterClient, ExporterRefused, ExporterUnreachable
from marketplace_exporter.catalogue import DeployStatus
from marketplace_exporter.cli import main
from marketplace_exporter.deploys.ci_env import ci_defaults
from marketplace_exporter.deploys.cli import CSV_COLUMNS
from marketplace_exporter.deploys.log import DeployLog
from marketplace_exporter.deploys.model import DeployMarker
from marketplace_exporter.server import ConfigSource, create_app

TOKEN = "cli-token-5d1e"
MARK = ["deploy", "mark", "--service", "listing-sync", "--environment", "production", "--version", "v3.1.0"]
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILD_URL", "USER", "USERNAME")


class ThreadedExporter:
    """The exporter app on 127.0.0.1:<free port>, its event loop in a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> ThreadedExporter:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._runner.setup(), self._loop).result(10)
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(site.start(), self._loop).result(10)
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _exporter(tmp_path: Path, config_text: str = "{}\n") -> ThreadedExporter:
    path = tmp_path / "config.yml"
    path.write_text(config_text)
    source = ConfigSource(str(path))
    return ThreadedExporter(create_app(source, source.load(), storage_path=str(tmp_path / "data")))


@pytest.fixture(autouse=True)
def _keep_pytest_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """``main`` points the root logger at the stderr of the moment; capsys replaces it per test."""
    monkeypatch.setattr("marketplace_exporter.cli.setup_logging", lambda *_: None)


@pytest.fixture
def exporter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedExporter]:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with _exporter(tmp_path) as running:
        yield running


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _listed(capsys: pytest.CaptureFixture[str], exporter: ThreadedExporter, *extra: str) -> list[dict[str, object]]:
    code, out, _ = _run(capsys, "deploys", "list", "--format", "json", f"--exporter.url={exporter.url}", *extra)
    assert code == 0
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_github_actions_fill_commit_actor_and_run_url(exporter: ThreadedExporter, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_SHA": "4f2a9c0e11d3b7aa", "GITHUB_ACTOR": "octo-sre",
                        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/listing-sync",
                        "GITHUB_RUN_ID": "987654"}.items():
        monkeypatch.setenv(name, value)
    code, out, err = _run(capsys, *MARK, "--status", "started", "--sites", "US,DE", f"--exporter.url={exporter.url}")
    assert (code, err) == (0, "")
    assert out.startswith("recorded deploy #1: listing-sync v3.1.0 in production, started at ")
    [row] = _listed(capsys, exporter)
    assert row["commit"] == "4f2a9c0e11d3b7aa" and row["actor"] == "octo-sre"
    assert row["pipeline_url"] == "https://github.com/acme/listing-sync/actions/runs/987654"
    assert row["sites"] == ["US", "DE"] and row["status"] == "started"


def test_flags_win_over_ci_variables(exporter: ThreadedExporter, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    monkeypatch.setenv("CI_COMMIT_SHA", "aaaa1111")
    monkeypatch.setenv("GITLAB_USER_LOGIN", "gitlab-user")
    monkeypatch.setenv("CI_PIPELINE_URL", "https://gitlab.example.com/g/p/-/pipelines/5")
    assert _run(capsys, *MARK, "--commit", "bbbb2222", "--actor", "release-bot",
                f"--exporter.url={exporter.url}")[0] == 0
    [row] = _listed(capsys, exporter)
    assert (row["commit"], row["actor"]) == ("bbbb2222", "release-bot")
    assert row["pipeline_url"] == "https://gitlab.example.com/g/p/-/pipelines/5"


@pytest.mark.parametrize(("env", "expected"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_SHA": "abc123", "GITHUB_ACTOR": "a", "GITHUB_REPOSITORY": "o/r",
      "GITHUB_RUN_ID": "7"}, ("github", "abc123", "a", "https://github.com/o/r/actions/runs/7")),
    ({"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://ghe.corp/", "GITHUB_REPOSITORY": "o/r",
      "GITHUB_RUN_ID": "8"}, ("github", "", "", "https://ghe.corp/o/r/actions/runs/8")),
    ({"GITLAB_CI": "true", "CI_COMMIT_SHA": "def456", "GITLAB_USER_LOGIN": "li.na",
      "CI_PIPELINE_URL": "https://gitlab/p/1"}, ("gitlab", "def456", "li.na", "https://gitlab/p/1")),
    ({"JENKINS_URL": "https://jenkins/", "GIT_COMMIT": "0123abcd", "BUILD_USER_ID": "wang",
      "BUILD_URL": "https://jenkins/job/x/3/"}, ("jenkins", "0123abcd", "wang", "https://jenkins/job/x/3/")),
    ({"BUILD_URL": "https://jenkins/job/y/1/", "BUILD_USER": "Zhang San"},
     ("jenkins", "", "Zhang San", "https://jenkins/job/y/1/")),
    ({"USER": "ops"}, ("local", "", "ops", "")),
])
def test_ci_defaults_per_provider(env: dict[str, str], expected: tuple[str, str, str, str]) -> None:
    found = ci_defaults(env)
    assert (found.provider, found.commit, found.actor, found.pipeline_url) == expected


def test_a_wrong_token_exits_1_with_a_hint_and_no_secret(exporter: ThreadedExporter,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # the exporter runs in this process too: the client reads its token from another variable
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", "not-the-token")
    code, out, err = _run(capsys, *MARK, "--token-env", "PIPELINE_DEPLOY_TOKEN", f"--exporter.url={exporter.url}")
    assert code == 1 and out == ""
    assert err == ("error: exporter refused the request (HTTP 401): invalid Bearer token "
                   "(is PIPELINE_DEPLOY_TOKEN set to the exporter's token?)\n")
    assert "not-the-token" not in err


def test_an_invalid_field_exits_1_naming_it(exporter: ThreadedExporter, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "deploy", "mark", "--service", "listing sync", "--environment", "production",
                        "--version", "v1", f"--exporter.url={exporter.url}")
    assert code == 1
    assert err.startswith("error: exporter refused the request (HTTP 400): expected letters, digits")
    assert "(field service)" in err


def test_an_unreachable_exporter_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        code, out, err = _run(capsys, *MARK, f"--exporter.url=http://127.0.0.1:{port}")
    assert code == 2 and out == ""
    assert err.startswith(f"error: cannot reach the exporter at http://127.0.0.1:{port}: ConnectError")
    assert "is --exporter.url right?" in err


def test_a_mark_inside_a_freeze_prints_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    now = datetime.now(UTC)
    config = (f"deploys:\n  freeze_windows:\n    - name: black-friday\n      environments: [production]\n"
              f"      start: {(now - timedelta(hours=2)).isoformat()}\n"
              f"      end: {(now + timedelta(hours=2)).isoformat()}\n      policy: block\n")
    with _exporter(tmp_path, config) as running:
        code, out, err = _run(capsys, *MARK, f"--exporter.url={running.url}")
    assert code == 0 and out.startswith("recorded deploy #1")
    assert err.startswith("WARNING: recorded inside freeze window 'black-friday' (policy: block)")


def test_list_shows_a_table_newest_first(exporter: ThreadedExporter, capsys: pytest.CaptureFixture[str]) -> None:
    for version, status in (("v1.0.0", "succeeded"), ("v1.1.0", "started"), ("v1.1.0", "rolled_back")):
        _run(capsys, "deploy", "mark", "--service", "order-sync", "--environment", "production",
             "--version", version, "--status", status, "--commit", "0123456789abcdef", "--actor", "李雷",
             f"--exporter.url={exporter.url}")
    code, out, _ = _run(capsys, "deploys", "list", "--limit", "2", f"--exporter.url={exporter.url}")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].split() == ["ID", "DEPLOYED", "(UTC)", "SERVICE", "ENVIRONMENT", "VERSION", "COMMIT", "STATUS",
                                "FREEZE", "ACTOR"]
    assert lines[1].split()[0] == "3" and "rolled_back" in lines[1] and "0123456789 " in lines[1]
    assert lines[2].split()[0] == "2" and lines[2].rstrip().endswith("李雷")


def test_list_filters_and_explains_an_empty_result(exporter: ThreadedExporter,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _run(capsys, *MARK, f"--exporter.url={exporter.url}")
    assert len(_listed(capsys, exporter, "--environment", "production", "--since", "1h")) == 1
    assert _listed(capsys, exporter, "--environment", "staging") == []
    code, out, _ = _run(capsys, "deploys", "list", "--service", "nothing-here", f"--exporter.url={exporter.url}")
    assert (code, out) == (0, "no deploy markers match\n")


def test_export_streams_every_page_as_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    (tmp_path / "data").mkdir()
    seeded = DeployLog.open(tmp_path / "data")
    for index in range(2105):  # more than two pages of 1000
        seeded.append(DeployMarker("listing-sync", "production", f"v{index}", status=DeployStatus.SUCCEEDED,
                                   actor="=HYPERLINK(\"http://evil\")" if index == 0 else "ci"),
                      received_at=1_790_000_000 + index)
    seeded.close()
    with _exporter(tmp_path) as running:
        code, out, _ = _run(capsys, "deploys", "export", "--format", "csv", f"--exporter.url={running.url}")
        assert code == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert len(rows) == 2105
        assert [row["version"] for row in rows[:2]] == ["v2104", "v2103"] and rows[-1]["version"] == "v0"
        assert rows[-1]["actor"] == "'=HYPERLINK(\"http://evil\")"  # a spreadsheet shows it, never runs it
        code, out, _ = _run(capsys, "deploys", "export", "--format", "json", "--since", "1790002000",
                            f"--exporter.url={running.url}")
        assert code == 0
        exported = json.loads(out)
        assert [row["id"] for row in exported] == list(range(2105, 2000, -1))


def test_the_client_reports_non_json_errors_and_timeouts(exporter: ThreadedExporter) -> None:
    with ExporterClient(exporter.url) as client, pytest.raises(ExporterRefused) as refused:
        client.get("/no/such/path")
    assert refused.value.status == 404
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with ExporterClient(url, timeout=0.3) as client, pytest.raises(ExporterUnreachable, match="in time"):
            client.get("/api/v1/deploys")


def test_the_client_sends_the_token_only_from_the_environment(exporter: ThreadedExporter,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with ExporterClient(exporter.url) as client:
        assert client.get("/api/v1/deploys") == {"deploys": [], "next_before": None}
    monkeypatch.delenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN")
    monkeypatch.setenv("OTHER_TOKEN_VAR", TOKEN)
    with ExporterClient(exporter.url) as client, pytest.raises(ExporterRefused) as refused:
        client.get("/api/v1/deploys")
    assert refused.value.status == 503  # the exporter reads the same (now unset) variable


def test_the_client_strips_a_trailing_newline_from_the_token(exporter: ThreadedExporter,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", TOKEN + "\n")  # httpx would refuse the header otherwise
    with ExporterClient(exporter.url, token_env="PIPELINE_DEPLOY_TOKEN") as client:
        assert client.get("/api/v1/deploys")["deploys"] == []


@pytest.mark.parametrize("token", ["abc\x01secret-part", "abc secret-part", "abc-secret-part-密"])
def test_a_token_no_header_can_carry_is_refused_unsent_and_unquoted(exporter: ThreadedExporter, token: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # sent as is, h11 or the server's 400 would quote the raw header, token included, into CI logs
    monkeypatch.setenv("PIPELINE_DEPLOY_TOKEN", token)
    with ExporterClient(exporter.url, token_env="PIPELINE_DEPLOY_TOKEN") as client, \
            pytest.raises(ExporterRefused) as refused:
        client.get("/api/v1/deploys")
    assert "the token in PIPELINE_DEPLOY_TOKEN contains spaces, control or non-ASCII" in str(refused.value)
    assert "secret-part" not in str(refused.value)


def test_a_mark_refused_with_retry_after_is_retried_with_back_off_and_others_are_not() -> None:
    from marketplace_exporter.deploys.cli import post_with_retries

    class Client:
        def __init__(self, *steps: object) -> None:
            self.steps = list(steps)
            self.calls = 0

        def post(self, path: str, body: object) -> object:
            self.calls += 1
            step = self.steps.pop(0)
            if isinstance(step, Exception):
                raise step
            return step

    down = ExporterRefused(503, "database unavailable", retry_after="2")
    slept: list[float] = []
    client = Client(down, down, down, {"deploy": {"id": 7}})
    assert post_with_retries(client, {}, retries=5, sleep=slept.append) == {"deploy": {"id": 7}}  # type: ignore[arg-type]
    assert slept == [1.0, 2.0, 4.0]
    with pytest.raises(ExporterRefused):
        post_with_retries(Client(down, down), {}, retries=1, sleep=slept.append)  # type: ignore[arg-type]
    no_token = Client(ExporterRefused(503, "no token configured"))  # no Retry-After: not temporary
    with pytest.raises(ExporterRefused):
        post_with_retries(no_token, {}, retries=5, sleep=slept.append)  # type: ignore[arg-type]
    assert no_token.calls == 1
