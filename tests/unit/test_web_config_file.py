"""The exporter-toolkit web config file: what node_exporter accepts is accepted, what Python's ssl
or aiohttp cannot do is refused with a located error (never silently weaker), and a password hash
or private key is never quoted back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from marketplace_exporter.config.yaml_loading import ConfigError
from marketplace_exporter.webserver.config import CIPHER_SUITES, load_web_config

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    return caught.value.errors


def test_the_toolkit_sample_reads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
                    f"basic_auth_users:\n  alice: {HASH}\n"
                    "http_server_config:\n  http2: false\n  headers:\n    X-Content-Type-Options: nosniff\n"
                    "rate_limit:\n  interval: 1s\n  burst: 20\n")
    config = load_web_config(str(path))
    assert config.tls is not None and config.tls.cert_file == str(tmp_path / "server.crt")
    assert config.users == {"alice": HASH}
    assert (config.rate_limit.interval, config.rate_limit.burst) == (1.0, 20)


@pytest.mark.parametrize(("text", "expected"), [
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n"
     "  client_ca_file: c\n",
     "web.yml:4: tls_server_config.client_auth_type: not supported: RequireAnyClientCert asks for a client "
     "certificate without verifying it"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  curve_preferences: [X25519, CurveP256]\n",
     "web.yml:4: tls_server_config.curve_preferences: more than one curve is not supported"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n",
     "web.yml:4: tls_server_config.cipher_suites: unknown cipher 'TLS_RSA_WITH_RC4_128_SHA'"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n",
     "web.yml:1: tls_server_config: client CA's have been configured without a Client Auth Policy"),
    ("tls_server_config:\n  cert_file: a\n", "web.yml:1: tls_server_config: missing one of key or key_file"),
    ("http_server_config:\n  http2: true\n", "web.yml:2: http_server_config.http2: HTTP/2 is not supported"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
     "web.yml:2: http_server_config.headers: invalid value for X-Frame-Options: expected one of deny, sameorigin"),
    ("http_server_config:\n  headers:\n    Server: x\n",
     "web.yml:2: http_server_config.headers: HTTP header 'Server' can not be configured"),
    ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_text: x\n",
     "web.yml:4: tls_server_config.client_ca_text: unknown key"),
    ("rate_limit:\n  interval: 5\n", "web.yml:2: rate_limit.interval: expected a duration"),
    ("rate_limit:\n  interval: 1s\n", "web.yml:1: rate_limit: burst must be at least 1 when interval is set"),
])
def test_what_cannot_be_honoured_is_a_located_error(tmp_path: Path, text: str, expected: str) -> None:
    found = errors(tmp_path, text)
    assert any(line.startswith(str(tmp_path / expected.split(":", 1)[0]) + ":" + expected.split(":", 1)[1])
               for line in found), found


def test_a_password_that_is_not_a_bcrypt_hash_is_refused_without_being_quoted(tmp_path: Path) -> None:
    (line,) = errors(tmp_path, "basic_auth_users:\n  alice: hunter2-plaintext\n")
    assert "basic_auth_users: the password of 'alice' is not a bcrypt hash" in line
    assert "hunter2" not in line


def test_every_go_cipher_name_maps_to_the_openssl_suite_of_the_same_standard_name() -> None:
    """Cross-checked with the openssl binary's own IANA ↔ OpenSSL name table."""
    listing = subprocess.run(["openssl", "ciphers", "-stdname", "ALL"], capture_output=True, text=True,
                             check=True).stdout
    standard = dict(line.split(" - ")[0].split()[:1] + line.split(" - ")[1].split()[:1]
                    for line in listing.splitlines() if " - " in line)
    for go_name, openssl_name in CIPHER_SUITES.items():
        if openssl_name is not None:
            assert standard.get(go_name) == openssl_name, go_name
        else:
            assert go_name in standard  # a TLS 1.3 suite: always on


def test_run_stops_before_listening_on_a_bad_web_config(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("{}\n")
    (tmp_path / "web.yml").write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    result = subprocess.run([sys.executable, "-m", "marketplace_exporter", "run", "--config.file=config.yml",
                             "--web.config.file=web.yml", "--web.listen-address=127.0.0.1:0"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert (f"web.yml:2: tls_server_config.cert_file: cannot read {tmp_path / 'missing.crt'}: No such file or "
            "directory") in result.stderr


@pytest.mark.parametrize(("argv", "prefix"), [
    ([], "/"),
    (["--web.external-url=https://ops.example.com/exporter/"], "/exporter"),
    (["--web.external-url=https://ops.example.com/exporter/", "--web.route-prefix=/"], "/"),
    (["--web.route-prefix=mpx/v1/"], "/mpx/v1"),
])
def test_the_route_prefix_defaults_to_the_external_urls_path(argv: list[str], prefix: str) -> None:
    from marketplace_exporter import cli
    from marketplace_exporter.webserver.options import web_options

    args = cli._parser().parse_args(["run", "--config.file=x.yml", *argv])
    assert web_options(args).route_prefix == prefix


@pytest.mark.parametrize(("flag", "message"), [
    ("--web.external-url=ops.example.com/exporter", "--web.external-url: expected an absolute http(s) URL"),
    ("--web.route-prefix=/a/../b", "--web.route-prefix: expected a URL path such as /exporter"),
])
def test_a_malformed_url_or_prefix_names_its_flag(flag: str, message: str) -> None:
    from marketplace_exporter import cli
    from marketplace_exporter.webserver.options import web_options

    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        web_options(cli._parser().parse_args(["bridge", "--config.file=b.yml", flag]))
