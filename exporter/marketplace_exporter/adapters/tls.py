"""TLS certificate check of a host that is not otherwise probed (``tls_hosts`` in config), e.g. the
seller's OAuth callback domain: if its certificate expires, marketplace consent flows break.

One ``HEAD https://host:port/`` whose HTTP answer does not matter: the engine's transport records
the certificate's notAfter (``marketplace_tls_cert_expiry_timestamp_seconds{host}``) for every https
request, probes and this check alike, and a handshake or verification failure is classified
``tls`` by the engine. An already expired certificate therefore shows as a failing ``tls`` check
(the expiry time itself cannot be read from a connection that failed verification).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from marketplace_exporter.adapters.base import Marketplace, ProbeContext, ProbeSteps, StrictModel
from marketplace_exporter.model import HttpResponse, Operation, ProbeOutcome, RequestSpec


class TlsParams(StrictModel):
    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-]{1,253}$")]
    port: Annotated[int, Field(ge=1, le=65535)] = 443


class TlsCheck(Marketplace[None, TlsParams]):
    """Not a marketplace: no account (credentials None), no sites, no production traffic."""

    name = "tls"
    Credentials = type(None)
    Params = TlsParams
    sites = frozenset()
    operations = {
        "certificate": Operation("certificate", "HEAD https://host:port/ to read the certificate",
                                 default_interval_seconds=3600.0),
    }

    def steps(self, ctx: ProbeContext[None, TlsParams]) -> ProbeSteps:
        params = ctx.params
        response: HttpResponse = yield RequestSpec("HEAD", f"https://{params.host}:{params.port}/",
                                                   headers=(("user-agent", "marketplace-exporter"),))
        return ProbeOutcome.ok(response.status, message=f"TLS handshake verified (HTTP {response.status})")
