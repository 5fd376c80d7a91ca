"""``--web.config.file`` on a real listener (real sockets, real TLS, certificates made by openssl at
test time): basic auth with bcrypt, the write APIs' Bearer tokens beside it, headers, rate limit,
the file re-read when it changes, renewed certificates and client certificates; and
``--web.enable-lifecycle`` on the exporter and the bridge."""

from __future__ import annotations

import asyncio
import base64
import html
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import bcrypt
import pytest
from aiohttp import web
from tls_certs import Certs, issue, make_certs

from marketplace_exporter.server import ConfigSource, create_app
from marketplace_exporter.webserver import gate
from marketplace_exporter.webserver.listener import Listener
from marketplace_exporter.webserver.options import WebOptions

TOKEN = "deploy-token-web-Zq81"
#: cost 4: the cheapest bcrypt, so the suite does not pay ~100 ms per first check
HASH = bcrypt.hashpw(b"s3cret pass", bcrypt.gensalt(4)).decode()
GOOD = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret pass").decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"prometheus:nope").decode()}
UNKNOWN = {"Authorization": "Basic " + base64.b64encode(b"mallory:s3cret pass").decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Serve]:
    """Start the exporter (an empty config: the deploy API, /metrics, /probe) behind ``web_config``
    on a free port; returns its base URL."""
    monkeypatch.setenv("MARKETPLACE_EXPORTER_DEPLOY_TOKEN", TOKEN)
    runners: list[web.AppRunner] = []

    async def start(web_config: str | None, **options: object) -> str:
        (tmp_path / "config.yml").write_text("{}\n")
        source = ConfigSource(str(tmp_path / "config.yml"))
        path = None
        if web_config is not None:
            path = str(tmp_path / "web.yml")
            Path(path).write_text(web_config)
        listener = Listener.prepare(WebOptions(config_file=path, **options))  # type: ignore[arg-type]
        runner = web.AppRunner(listener.wrap(create_app(source, source.load(), storage_path=str(tmp_path))))
        runners.append(runner)
        await listener.start(runner, "127.0.0.1:0", "--web.listen-address")
        port = runner.addresses[0][1]
        return f"{'https' if listener.tls else 'http'}://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def fetch(url: str, method: str = "GET", *, context: ssl.SSLContext | None = None,
                **kwargs: object) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, \
            session.request(method, url, ssl=context if context is not None else True, **kwargs) as response:
        return response.status, await response.text(), dict(response.headers)


USERS = f"basic_auth_users:\n  prometheus: '{HASH}'\n"


async def test_every_path_needs_a_web_user_and_a_wrong_or_unknown_one_is_refused(serve: Serve) -> None:
    base = await serve(USERS)
    for path in ("/metrics", "/", "/probe?check=x", "/-/healthy", "/-/ready", "/api/v1/deploys"):
        status, _, headers = await fetch(base + path)
        assert (status, headers.get("WWW-Authenticate")) == (401, "Basic"), path
        assert (await fetch(base + path, headers=WRONG))[0] == 401
        assert (await fetch(base + path, headers=UNKNOWN))[0] == 401
    status, body, _ = await fetch(base + "/metrics", headers=GOOD)
    assert status == 200 and "process_cpu_seconds_total" in body
    assert (await fetch(base + "/-/healthy", headers=GOOD))[0] == 200


async def test_a_bearer_token_reaches_only_routes_that_check_their_own(serve: Serve) -> None:
    base = await serve(USERS)
    marker = {"service": "checkout", "version": "1.2.3", "environment": "production"}
    # the deploy API checks its own token: the Bearer request passes the web gate and is accepted
    assert (await fetch(base + "/api/v1/deploys", "POST", json=marker, headers=BEARER))[0] == 201
    wrong = {"Authorization": "Bearer not-the-token"}
    assert (await fetch(base + "/api/v1/deploys", "POST", json=marker, headers=wrong))[0] == 401
    # a web user is still anonymous to the deploy API (anonymous_writes: loopback, a token is set)
    status, body, _ = await fetch(base + "/api/v1/deploys", "POST", json=marker, headers=GOOD)
    assert status == 401 and "missing Bearer token" in body
    # a Bearer token never opens a route without a token of its own
    for path in ("/metrics", "/probe?check=x", "/-/healthy"):
        assert (await fetch(base + path, headers=BEARER))[0] == 401, path


async def test_bcrypt_runs_once_per_credentials_and_off_the_event_loop(serve: Serve,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = gate._checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        import threading

        calls.append(threading.current_thread().name)
        return real(password, hashed)

    monkeypatch.setattr(gate, "_checkpw", counting)
    base = await serve(USERS)
    statuses = await asyncio.gather(*(fetch(base + "/-/healthy", headers=GOOD) for _ in range(5)))
    assert {s[0] for s in statuses} == {200}
    for _ in range(3):
        assert (await fetch(base + "/-/healthy", headers=WRONG))[0] == 401
    assert len(calls) == 2  # one good, one wrong password: the rest answered from the cache
    assert all(name != "MainThread" for name in calls)


async def test_headers_apply_to_every_answer_and_the_rate_limit_to_every_request(serve: Serve) -> None:
    base = await serve(USERS + "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
                       "    Strict-Transport-Security: max-age=31536000\n"
                       "rate_limit:\n  interval: 1m\n  burst: 3\n")
    answers = [await fetch(base + "/-/healthy", headers=GOOD if n % 2 else {}) for n in range(4)]
    assert [a[0] for a in answers] == [401, 200, 401, 429]
    for _, _, headers in answers[:3]:
        assert headers["X-Frame-Options"] == "deny"
        assert headers["Strict-Transport-Security"] == "max-age=31536000"


async def test_the_file_is_re_read_when_it_changes_and_a_broken_version_fails_closed(
        serve: Serve, tmp_path: Path) -> None:
    base = await serve(USERS)
    other = bcrypt.hashpw(b"rotated", bcrypt.gensalt(4)).decode()
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(f"basic_auth_users:\n  prometheus: '{other}'\n")
    assert (await fetch(base + "/metrics", headers=GOOD))[0] == 401
    rotated = {"Authorization": "Basic " + base64.b64encode(b"prometheus:rotated").decode()}
    assert (await fetch(base + "/metrics", headers=rotated))[0] == 200
    web_yml.write_text("basic_auth_users:\n  prometheus: plain-text-password\n")
    status, body, _ = await fetch(base + "/metrics", headers=rotated)
    assert status == 500 and "plain-text-password" not in body
    web_yml.write_text("{}\n")  # no users: open again
    assert (await fetch(base + "/metrics"))[0] == 200


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def client_context(certs: Certs, with_client_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca))
    if with_client_cert:
        context.load_cert_chain(str(certs.cert("client")), str(certs.key("client")))
    return context


async def peer_serial(url: str, context: ssl.SSLContext) -> int:
    """The serial number of the certificate the server presents on a new connection."""
    host, port = url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return int(ssl_object.getpeercert()["serialNumber"], 16)
    finally:
        writer.close()


async def test_tls_serves_https_only_and_a_renewed_certificate_without_a_restart(serve: Serve, certs: Certs) -> None:
    base = await serve(f"tls_server_config:\n  cert_file: {certs.cert('server')}\n  key_file: {certs.key('server')}\n"
                       "  min_version: TLS12\n" + USERS)
    context = client_context(certs)
    assert (await fetch(base + "/metrics", headers=GOOD, context=context))[0] == 200
    with pytest.raises(aiohttp.ClientError):  # plain HTTP on the TLS port
        await fetch(base.replace("https://", "http://") + "/metrics", headers=GOOD)
    assert await peer_serial(base, context) == 1
    issue(certs, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost", serial=2)
    assert await peer_serial(base, context) == 2
    assert (await fetch(base + "/metrics", headers=GOOD, context=context))[0] == 200


async def test_client_certificates_verified_against_the_client_ca_and_allowed_sans(
        serve: Serve, certs: Certs, tmp_path: Path) -> None:
    tls = (f"tls_server_config:\n  cert_file: {certs.cert('server')}\n  key_file: {certs.key('server')}\n"
           f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs.ca}\n")
    base = await serve(tls + "  client_allowed_sans: [prometheus.monitoring.test]\n")
    assert (await fetch(base + "/-/healthy", context=client_context(certs, True)))[0] == 200
    with pytest.raises(aiohttp.ClientError):  # no client certificate: the handshake fails
        await fetch(base + "/-/healthy", context=client_context(certs))
    (tmp_path / "web.yml").write_text(tls + "  client_allowed_sans: [grafana.monitoring.test]\n")
    status, body, _ = await fetch(base + "/-/healthy", context=client_context(certs, True))
    assert status == 403 and "SAN" in body


async def test_reload_needs_the_lifecycle_flag_on_the_exporter(serve: Serve) -> None:
    base = await serve(None)
    status, body, _ = await fetch(base + "/-/reload", "POST")
    assert status == 403 and "Lifecycle API is not enabled" in body and "--web.enable-lifecycle" in body
    enabled = await serve(None, enable_lifecycle=True)
    status, body, _ = await fetch(enabled + "/-/reload", "POST")
    assert status == 200 and "reloaded" in body


async def test_route_prefix_serves_every_route_under_it_and_redirects_the_root(serve: Serve) -> None:
    base = await serve(USERS, route_prefix="/exporter")
    assert (await fetch(base + "/exporter/metrics"))[0] == 401  # the gate covers the prefix too
    assert (await fetch(base + "/exporter/metrics", headers=GOOD))[0] == 200
    assert (await fetch(base + "/exporter/-/healthy", headers=GOOD))[0] == 200
    assert (await fetch(base + "/metrics", headers=GOOD))[0] == 404
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/exporter"):
            async with session.get(base + path, headers=GOOD, allow_redirects=False) as response:
                assert (response.status, response.headers.get("Location")) == (302, "/exporter/"), path
    # every link, form and source on the status page stays under the prefix and answers
    status, page, _ = await fetch(base + "/exporter/", headers=GOOD)
    assert status == 200
    links = re.findall(r'(?:href|action|src)="([^"]*)"', page)
    assert links, "the status page links to /metrics at least"
    for link in links:
        target = urljoin(base + "/exporter/", html.unescape(link))
        assert urlsplit(target).path.startswith("/exporter/"), f"{link!r} leaves the route prefix"
        assert (await fetch(target, headers=GOOD))[0] == 200, link


BRIDGE_YML = """\
storage_path: outbox.db
auth:
  bearer_token: ${TEST_WEB_BRIDGE_TOKEN}
defaults: {grafana_url: http://grafana:3000, alertmanager_url: http://alertmanager:9093}
receivers:
  hook:
    channel: webhook
    url: {value: "http://127.0.0.1:9/hook"}
"""


async def test_the_bridge_behind_the_same_web_config_lifecycle_flag_and_route_prefix(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from marketplace_exporter.bridge.app import create_bridge_app
    from marketplace_exporter.bridge.config import load_bridge_config

    monkeypatch.setenv("TEST_WEB_BRIDGE_TOKEN", "bridge-token-77")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bridge.yml").write_text(BRIDGE_YML)
    (tmp_path / "web.yml").write_text(USERS)
    listener = Listener.prepare(WebOptions(config_file=str(tmp_path / "web.yml"), route_prefix="/bridge"))
    app = create_bridge_app("bridge.yml", load_bridge_config("bridge.yml"))
    runner = web.AppRunner(listener.wrap(app))
    await listener.start(runner, "127.0.0.1:0", "--web.listen-address")
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/bridge"
    try:
        status, body, _ = await fetch(base + "/", headers=GOOD)
        assert status == 200 and "POST /bridge/alertmanager/<receiver>" in body
        assert (await fetch(base + "/metrics"))[0] == 401
        status, body, _ = await fetch(base + "/metrics", headers=GOOD)
        assert status == 200 and "process_resident_memory_bytes" in body
        assert 'marketplace_bridge_build_info{branch="' in body
        status, body, _ = await fetch(base + "/-/reload", "POST", headers=GOOD)
        assert status == 403 and "--web.enable-lifecycle" in body
        alert = {"status": "firing", "labels": {"alertname": "A"}, "annotations": {}, "fingerprint": "a1",
                 "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""}
        payload = {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "hook", "groupLabels": {},
                   "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": [alert]}
        bearer = {"Authorization": "Bearer bridge-token-77"}
        # Alertmanager's credentials_file Bearer token passes the web gate to the webhook's own check
        assert (await fetch(base + "/alertmanager/hook", "POST", json=payload, headers=bearer))[0] == 200
        assert (await fetch(base + "/alertmanager/hook", "POST", json=payload, headers=GOOD))[0] == 401
    finally:
        await runner.cleanup()


async def test_the_deploy_client_reaches_a_tls_exporter_under_a_route_prefix(serve: Serve, certs: Certs,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What a pipeline does (docs/security.md): MARKETPLACE_EXPORTER_URL with the prefix, the CA in
    SSL_CERT_FILE, the deploy token as Bearer beside the web config's users."""
    from marketplace_exporter.api_client import ExporterClient

    base = await serve(f"tls_server_config:\n  cert_file: {certs.cert('server')}\n  key_file: {certs.key('server')}\n"
                       + USERS, route_prefix="/exporter")
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    marker = {"service": "checkout", "version": "2.0.0", "environment": "production"}

    def mark() -> object:
        with ExporterClient(base + "/exporter") as client:
            return client.post("/api/v1/deploys", marker)

    answer = await asyncio.to_thread(mark)
    assert isinstance(answer, dict) and answer["deploy"]["service"] == "checkout", answer


def test_every_route_that_checks_a_bearer_token_is_marked_so_and_no_other(tmp_path: Path) -> None:
    """A new write API that forgets ``@own_credentials`` would refuse its token behind a web config;
    a read route wrongly marked would let any Bearer header past the gate."""
    import inspect

    from marketplace_exporter.webserver.marks import OWN_CREDENTIALS

    (tmp_path / "config.yml").write_text("{}\n")
    source = ConfigSource(str(tmp_path / "config.yml"))
    app = create_app(source, source.load(), storage_path=str(tmp_path))
    checked = ("authorize(request)", ".check(request)", "auth.check(")
    marked = set()
    for route in app.router.routes():
        handler = route.handler
        code = inspect.getsource(handler) if inspect.isfunction(handler) else ""
        checks_token = any(call in code for call in checked)
        assert bool(getattr(handler, OWN_CREDENTIALS, False)) == checks_token, (route.method, route.resource)
        if checks_token:
            marked.add((route.method, route.resource.canonical if route.resource else ""))
    assert {("POST", "/api/v1/deploys"), ("GET", "/api/v1/deploys"), ("POST", "/api/v1/verify"),
            ("POST", "/api/v1/traffic"), ("POST", "/v1/traces")} <= marked, marked
