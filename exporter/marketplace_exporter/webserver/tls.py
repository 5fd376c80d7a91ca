"""TLS for the exporter's and the bridge's listeners from ``tls_server_config``, with renewed
certificates picked up without a restart.

exporter-toolkit re-reads the web config and the certificate on every new connection (Go's
``GetConfigForClient``). Python's equivalent hook is the SNI callback, which OpenSSL calls for every
ClientHello (with or without a server name): there the listener checks whether the web config or
any file it names changed, rebuilds the context when they did, and hands the connection the
current one (``SSLObject.context``: certificate, key and client-CA store). Settings OpenSSL copies
into a connection before that callback (versions, ciphers, client-certificate mode) are updated on
the listening context in place, so they apply from the next connection on. A file that no longer
loads fails the handshake and is logged (fail closed, like exporter-toolkit), and the previous
certificate is never served for a config that now says otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

from marketplace_exporter.config.yaml_loading import ConfigError
from marketplace_exporter.webserver.config import CIPHER_SUITES, CURVES, TLSServerConfig, WebConfig

log = logging.getLogger(__name__)

VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3}
_KEY = ("tls_server_config",)


def build_context(config: WebConfig) -> ssl.SSLContext:
    """A server context for ``config.tls``; a :class:`ConfigError` located at the key whose file or
    value OpenSSL refused."""
    tls = config.tls
    assert tls is not None
    for key in ("cert_file", "key_file", "client_ca_file"):
        name = getattr(tls, key)
        try:
            if name:
                with open(name, "rb"):
                    pass
        except OSError as exc:
            raise config.error(_KEY + (key,), f"cannot read {name}: {exc.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    configure(context, tls, config)
    _load_certificate(context, tls, config)
    if tls.client_ca_file or tls.client_ca:
        key = "client_ca_file" if tls.client_ca_file else "client_ca"
        try:
            context.load_verify_locations(cafile=tls.client_ca_file, cadata=tls.client_ca)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise config.error(_KEY + (key,), f"cannot load the client CA: {_reason(exc)}") from None
    return context


def configure(context: ssl.SSLContext, tls: TLSServerConfig, config: WebConfig) -> None:
    """Versions, ciphers, curve and client-certificate mode (what a connection copies at its start)."""
    try:
        context.minimum_version = VERSIONS[tls.min_version]
        context.maximum_version = VERSIONS[tls.max_version]
    except ValueError as exc:  # an OpenSSL built without TLS 1.0/1.1
        raise config.error(_KEY + ("min_version",), f"not available in this OpenSSL: {exc}") from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    names = [name for suite in tls.cipher_suites or () if (name := CIPHER_SUITES[suite])]
    if names:
        try:
            context.set_ciphers(":".join(names))
        except ssl.SSLError as exc:
            raise config.error(_KEY + ("cipher_suites",), f"refused by OpenSSL: {_reason(exc)}") from None
    if tls.curve_preferences:
        context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
    context.verify_mode = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                           "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}[tls.client_auth_type]


def _load_certificate(context: ssl.SSLContext, tls: TLSServerConfig, config: WebConfig) -> None:
    key_name = "cert_file" if tls.cert_file else "cert"
    try:
        if tls.cert_file and tls.key_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
            return
        # inline PEM (cert:/key:): OpenSSL loads a chain from files only, so through a private
        # directory (0700) that exists for the duration of the call
        with tempfile.TemporaryDirectory(prefix="mpx-tls-") as private:
            cert = tls.cert_file or _write(private, "cert.pem", tls.cert or "")
            key = tls.key_file or _write(private, "key.pem", tls.key or "")
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise config.error(_KEY + (key_name,), f"cannot load the certificate and key: {_reason(exc)}") from None


def _write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return path


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def _files_stamp(config: WebConfig) -> tuple[Any, ...]:
    tls = config.tls
    stamps: list[Any] = [id(config)]
    for name in tls.files() if tls else ():
        try:
            info = os.stat(name)
            stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


class TLSListener:
    """The listening context and its per-connection refresh (see the module docstring)."""

    def __init__(self, current: Callable[[], WebConfig]) -> None:
        self._current_config = current
        config = current()
        self.context = build_context(config)
        self._connection_context = self.context
        self._stamp = _files_stamp(config)
        self._failure = ""
        self.context.sni_callback = self._on_client_hello

    def refresh(self) -> bool:
        """Rebuild when the web config or a file it names changed; False when it cannot be used now."""
        try:
            config = self._current_config()
            stamp = _files_stamp(config)
            if stamp == self._stamp:
                return True
            if config.tls is None:
                raise config.error(_KEY, "removed: a listener started with TLS keeps TLS; restart to serve plain HTTP")
            fresh = build_context(config)
            configure(self.context, config.tls, config)
        except ConfigError as exc:
            if str(exc) != self._failure:  # once per problem, not once per refused connection
                log.error("web config: TLS cannot be used, refusing connections until fixed:\n%s", exc)
            self._failure, self._stamp = str(exc), ()
            return False
        self._connection_context, self._stamp, self._failure = fresh, stamp, ""
        log.info("web config: TLS settings or certificate files changed; new connections use them")
        return True

    def _on_client_hello(self, connection: Any, server_name: str | None, context: ssl.SSLContext) -> int | None:
        if not self.refresh():
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        if self._connection_context is not self.context:
            connection.context = self._connection_context
        return None


def allowed_san(peercert: dict[str, Any] | None, allowed: tuple[str, ...]) -> bool:
    """Whether the verified client certificate names one of ``allowed`` (DNS, IP, e-mail or URI)."""
    for kind, value in (peercert or {}).get("subjectAltName", ()):
        if kind == "IP Address":
            try:
                value = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                pass
        if kind in ("DNS", "IP Address", "email", "URI") and value in allowed:
            return True
    return False


__all__ = ["TLSListener", "allowed_san", "build_context"]
