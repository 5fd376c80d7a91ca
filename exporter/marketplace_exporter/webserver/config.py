"""``--web.config.file``: the exporter-toolkit web configuration format (the file node_exporter,
Prometheus and Alertmanager read), for the exporter and the bridge.

Format reference: prometheus/exporter-toolkit docs/web-configuration.md (sources in
docs/security.md). What Python's ``ssl`` cannot do is refused with a located error rather than
silently ignored, so a file written for node_exporter never gives weaker security here than there:

* ``client_auth_type: RequestClientCert | RequireAnyClientCert`` (ask for a certificate without
  verifying it): OpenSSL through Python only requests certificates it verifies. Use
  ``VerifyClientCertIfGiven`` or ``RequireAndVerifyClientCert`` with a client CA.
* ``curve_preferences`` with more than one curve: Python's ssl sets one curve (``set_ecdh_curve``).
* ``http_server_config.http2: true``: aiohttp serves HTTP/1.1 only (Prometheus scrapes over it).

Relative file names are relative to the web config file's directory, as in exporter-toolkit.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from marketplace_exporter.config.yaml_loading import (
    ConfigError,
    LineMap,
    pydantic_errors,
    read_yaml,
    require_mapping,
)
from marketplace_exporter.durations import parse_duration

#: Go crypto/tls names (``tls.CipherSuites()``, what exporter-toolkit accepts) → OpenSSL names.
#: TLS 1.3 suites are accepted and, as in Go, not configurable (they are always on).
CIPHER_SUITES: dict[str, str | None] = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
#: Go curve names → OpenSSL group names
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}
#: the only headers exporter-toolkit lets a web config set, with the values it allows (None: any)
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
#: a bcrypt hash as htpasswd -B and Go's bcrypt write it ($2a$, $2b$, $2x$, $2y$; cost 04-31)
BCRYPT_HASH = re.compile(r"\$2[abxy]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")

TLSVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
ClientAuth = Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert", "RequireClientCert",
                     "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"]
_UNVERIFIED = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TLSServerConfig(_Strict):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: tuple[str, ...] | None = None
    min_version: TLSVersion = "TLS12"
    max_version: TLSVersion = "TLS13"
    cipher_suites: tuple[str, ...] | None = None
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[Literal["CurveP256", "CurveP384", "CurveP521", "X25519"], ...] | None = None

    @field_validator("client_auth_type")
    @classmethod
    def _verifiable(cls, value: str) -> str:
        if value in _UNVERIFIED:
            raise ValueError(f"not supported: {value} asks for a client certificate without verifying it, and "
                             "Python's ssl verifies every certificate it asks for; use VerifyClientCertIfGiven "
                             "or RequireAndVerifyClientCert with client_ca_file")
        return value

    @field_validator("cipher_suites")
    @classmethod
    def _known_ciphers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in CIPHER_SUITES:
                raise ValueError(f"unknown cipher {name!r}: expected Go crypto/tls names such as "
                                 "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        return value

    @field_validator("curve_preferences")
    @classmethod
    def _one_curve(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(value) > 1:
            raise ValueError("more than one curve is not supported: Python's ssl sets one ECDH curve; list one")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        if self.cert and self.cert_file:
            raise ValueError("cert and cert_file are both set: give one")
        if self.key and self.key_file:
            raise ValueError("key and key_file are both set: give one")
        if self.client_ca and self.client_ca_file:
            raise ValueError("client_ca and client_ca_file are both set: give one")
        if not (self.cert or self.cert_file):
            raise ValueError("missing one of cert or cert_file")
        if not (self.key or self.key_file):
            raise ValueError("missing one of key or key_file")
        has_ca = bool(self.client_ca or self.client_ca_file)
        if has_ca and self.client_auth_type == "NoClientCert":
            raise ValueError("client CA's have been configured without a Client Auth Policy (client_auth_type)")
        if not has_ca and self.client_auth_type != "NoClientCert":
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file (or client_ca) "
                             "to verify client certificates against")
        if self.client_allowed_sans is not None and self.client_auth_type == "NoClientCert":
            raise ValueError("client_allowed_sans needs client_auth_type RequireAndVerifyClientCert")
        order = ("TLS10", "TLS11", "TLS12", "TLS13")
        if order.index(self.min_version) > order.index(self.max_version):
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        return self

    def files(self) -> tuple[str, ...]:
        """The files this config reads (watched for changes: a renewed certificate is used without a restart)."""
        return tuple(f for f in (self.cert_file, self.key_file, self.client_ca_file) if f)


class HTTPServerConfig(_Strict):
    http2: bool | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("http2")
    @classmethod
    def _no_http2(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("HTTP/2 is not supported (aiohttp serves HTTP/1.1, which Prometheus scrapes): "
                             "remove the key or set it to false")
        return value

    @field_validator("headers")
    @classmethod
    def _allowed_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, given in value.items():
            if name not in HEADERS:
                raise ValueError(f"HTTP header {name!r} can not be configured (allowed: {', '.join(HEADERS)})")
            allowed = HEADERS[name]
            if allowed is not None and given not in allowed:
                raise ValueError(f"invalid value for {name}: expected one of {', '.join(allowed)}, got {given!r}")
        return value


class RateLimit(_Strict):
    interval: float = 0.0
    burst: int = Field(default=0, ge=0)

    @field_validator("interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value != 0:
                raise ValueError("expected a duration such as 1s or 100ms (a bare number is only allowed as 0)")
            return 0.0
        return parse_duration(str(value))

    @model_validator(mode="after")
    def _some_burst(self) -> RateLimit:
        if self.interval > 0 and self.burst < 1:
            raise ValueError("burst must be at least 1 when interval is set (0 would refuse every request)")
        return self


class WebConfigModel(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimit = Field(default_factory=RateLimit)

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, value: dict[str, str]) -> dict[str, str]:
        for user, hashed in value.items():
            if not isinstance(hashed, str) or not BCRYPT_HASH.fullmatch(hashed):
                raise ValueError(f"the password of {user!r} is not a bcrypt hash (make one with "
                                 "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`)")
        return value


@dataclass(frozen=True)
class WebConfig:
    """A validated web config file (relative file names already resolved)."""

    path: str
    model: WebConfigModel
    #: where each key is, for errors found after validation (a certificate that does not load)
    lines: LineMap = field(compare=False, repr=False)

    def error(self, path: tuple[str, ...], message: str) -> ConfigError:
        return ConfigError([self.lines.error(path, message)])

    @property
    def tls(self) -> TLSServerConfig | None:
        return self.model.tls_server_config

    @property
    def users(self) -> dict[str, str]:
        return self.model.basic_auth_users

    @property
    def headers(self) -> dict[str, str]:
        return self.model.http_server_config.headers

    @property
    def rate_limit(self) -> RateLimit:
        return self.model.rate_limit


#: keys whose values are never quoted in an error (a private key, password hashes)
SECRET_KEYS = ("key", "basic_auth_users")


def load_web_config(path: str) -> WebConfig:
    """Read and validate ``path``; a :class:`ConfigError` lists every problem, located."""
    node, raw = read_yaml(path)
    lines = LineMap.of(path, node)
    if lines.errors:
        raise ConfigError(lines.errors)
    data = require_mapping(path, raw)
    try:
        model = WebConfigModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_errors(exc, lines, secret_keys=SECRET_KEYS,
                                          unknown_key="unknown key (not in the exporter-toolkit web config "
                                                      "format, or not supported here)")) from None
    if model.tls_server_config is not None:
        tls = model.tls_server_config
        base = os.path.dirname(os.path.abspath(path))
        resolved = {name: os.path.join(base, value) for name in ("cert_file", "key_file", "client_ca_file")
                    if (value := getattr(tls, name))}
        model = model.model_copy(update={"tls_server_config": tls.model_copy(update=resolved)})
    return WebConfig(path, model, lines)


__all__ = ["CIPHER_SUITES", "CURVES", "HEADERS", "RateLimit", "TLSServerConfig", "WebConfig", "load_web_config"]
