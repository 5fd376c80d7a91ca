"""Credentials: what is about to expire — tokens, secrets, authorisations, certificates, APIs.

Each row is one credential, host or API however many exporter processes export it (every shard
that connected to a host has its certificate; a moving account is on two shards for a moment):
the soonest expiry any of them saw (``lib.once``).
"""

from lib import (
    COUNT_BAD,
    DEPRECATION_90D_30D,
    EXPIRY_7D_1D,
    WEEK_S,
    datasource_variable,
    expiring_within,
    layout,
    make_dashboard,
    stat,
    table,
    time_left,
)

from marketplace_exporter import catalogue as cat

expiring_week = stat(
    "Credentials expiring within 7 days",
    expiring_within(cat.CREDENTIAL_EXPIRY, WEEK_S), COUNT_BAD)
certs_week = stat(
    "TLS certificates expiring within 7 days",
    expiring_within(cat.TLS_CERT_EXPIRY, WEEK_S), COUNT_BAD)
apis_soon = stat(
    "APIs removed within 90 days",
    expiring_within(cat.API_DEPRECATION, 90 * 86400), COUNT_BAD)

credentials = table(
    "Credentials by time to expiry",
    time_left(cat.CREDENTIAL_EXPIRY), EXPIRY_7D_1D, unit="s", value_title="expires in",
    description="Every credential (access/refresh token, client secret, authorisation), soonest first: "
                "orange under 7 days, red under 1 day.")
certificates = table(
    "TLS certificates by time to expiry",
    time_left(cat.TLS_CERT_EXPIRY), EXPIRY_7D_1D, unit="s", value_title="expires in",
    description="Certificates the probed (or configured extra) hosts presented: orange under 7 days, "
                "red under 1 day.")
deprecations = table(
    "API deprecation dates",
    time_left(cat.API_DEPRECATION), DEPRECATION_90D_30D, unit="s", value_title="removed in",
    description="Marketplace APIs you depend on and when they are removed: orange under 90 days, "
                "red under 30 days.")

dashboard = make_dashboard(
    "Marketplace exporter / Credentials",
    layout([
        (5, [expiring_week, certs_week, apis_soon]),
        (12, [credentials]),
        (9, [certificates, deprecations]),
    ]),
    [datasource_variable()],
    time_from="now-24h",
)
