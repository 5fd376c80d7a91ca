"""Certificates for TLS tests, made at test time with the openssl command line: a CA, a server
certificate for 127.0.0.1/localhost and a client certificate, all signed by that CA (EC P-256:
fast to make, and what Go's and Python's TLS both accept)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import require_binary


@dataclass(frozen=True)
class Certs:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.directory / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require_binary("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=marketplace-exporter test CA",
             cwd=directory)
    certs = Certs(directory)
    issue(certs, "server", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    issue(certs, "client", "subjectAltName=DNS:prometheus.monitoring.test")
    return certs


def issue(certs: Certs, name: str, extension: str, serial: int = 1) -> None:
    """(Re)issue ``name``.crt/.key signed by the CA; ``serial`` tells two issues apart."""
    directory = certs.directory
    (directory / f"{name}.ext").write_text(extension + "\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key.new",
             "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", str(serial),
             "-out", f"{name}.crt.new", "-days", "2", "-extfile", f"{name}.ext", cwd=directory)
    # key first, then certificate, each replaced atomically: what cert-manager's rotation looks like
    (directory / f"{name}.key.new").replace(directory / f"{name}.key")
    (directory / f"{name}.crt.new").replace(directory / f"{name}.crt")
